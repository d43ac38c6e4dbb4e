// Drives a page of inspect --html in Debian's Chromium (headless, through playwright-core) as a
// user would, and reports what it saw as JSON on stdout:
//   node drive.js PAGE.html HEAD Q,K [Q,K ...]
// clicks the thumbnail of the HEAD-th head, then for each cell (Q, K) moves the mouse onto it
// and records the hover text and the screenshot's pixel at the cell's centre; hovers token Q
// of the first cell and records which token and which outlines light up; collects every console
// error and uncaught exception, and the time the page took to load.
"use strict";
const path = require("path");
const { chromium } = require("playwright-core");

async function main() {
  const [page_path, head, ...cells] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  const out = { errors: [], probes: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
    page.on("console", m => { if (m.type() === "error") out.errors.push(m.text()); });
    page.on("pageerror", e => out.errors.push(String(e)));
    page.on("request", r => { if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) out.errors.push("network: " + r.url()); });
    const t0 = Date.now();
    await page.goto("file://" + path.resolve(page_path), { waitUntil: "load" });
    out.load_ms = Date.now() - t0;
    out.thumbnails = await page.locator("#heads figure").count();
    await page.locator("#heads figure").nth(Number(head)).click();
    const big = page.locator("#big");
    await big.evaluate(e => e.scrollIntoView()); // the enlarged head at the top of the window
    out.shown_head = Number(await big.getAttribute("data-head"));
    out.cell = Number(await big.getAttribute("data-cell"));
    const box = await big.boundingBox();
    const border = 1; // #big's CSS border
    for (const c of cells) {
      const [q, k] = c.split(",").map(Number);
      // a whole pixel inside the cell, its centre where the cell is wider than one
      const x = Math.round(box.x + border) + k * out.cell + Math.floor(out.cell / 2);
      const y = Math.round(box.y + border) + q * out.cell + Math.floor(out.cell / 2);
      await page.mouse.move(x, y);
      const tip = await page.locator("#tip").textContent();
      // the pixel under the cell's centre, away from the pointer (moved off first)
      await page.mouse.move(0, 0);
      const shot = await page.screenshot({ clip: { x, y, width: 1, height: 1 } });
      out.probes.push({ q, k, tip, pixel_png: shot.toString("base64") });
    }
    const [q0] = cells[0].split(",").map(Number);
    await page.locator("#tokens span").nth(q0).hover();
    out.lit_tokens = await page.locator("#tokens span.on").evaluateAll(s => s.map(e => Number(e.dataset.pos)));
    // the outline of the hovered token's row on the enlarged head, at the row's left edge (read
    // from the canvas: the hover may have scrolled the row out of the window)
    out.row_edge = await big.evaluate((c, y) => Array.from(c.getContext("2d").getImageData(1, y, 1, 1).data.slice(0, 3)),
                                      q0 * out.cell + Math.floor(out.cell / 2));
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch(e => { console.error("drive.js: " + e.message); process.exit(1); });
