// Reference tokenizer: reads a JSON array of strings on stdin, prints a JSON array of
// GPT-2 token id arrays (js-tiktoken, "gpt2" encoding; <|endoftext|> allowed as special).
const { getEncoding } = require("js-tiktoken");
const enc = getEncoding("gpt2");
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const strings = JSON.parse(input);
  const mode = process.argv[2] || "ids";
  if (mode === "bench") {
    const text = strings[0];
    const t0 = process.hrtime.bigint();
    const n = enc.encode(text, "all").length;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(JSON.stringify({ tokens: n, seconds: s, mb_per_s: Buffer.byteLength(text) / 1e6 / s }));
    return;
  }
  console.log(JSON.stringify(strings.map((s) => enc.encode(s, "all"))));
});
