// Reference for tokenizer.json files: the Hugging Face tokenizers' JavaScript implementation
// (@huggingface/tokenizers). Reads {"tokenizer": PATH, "strings": [...]} on stdin and prints
// {"with": [...], "without": [...]}: each string's ids with and without the special tokens the
// post-processor adds (add_special_tokens true and false).
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  const tok = new Tokenizer(JSON.parse(fs.readFileSync(req.tokenizer, "utf8")), {});
  const ids = (add) => req.strings.map((s) => tok.encode(s, { add_special_tokens: add }).ids);
  console.log(JSON.stringify({ with: ids(true), without: ids(false) }));
});
