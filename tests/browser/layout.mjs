// The PIN page for a `per-purpose` token procedure in headless Chromium: the page explains
// that a zip with one file per certificate comes, the download is that zip, and the page's
// Content-Security-Policy still holds.
// Usage: node layout.mjs BASE_URL DOWNLOAD_DIR   (prints "ok"; exits non-zero on failure)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [base, dir] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const identity = { commonname: "Alice Andersson", country: "SE", email: "alice@example.com" };
  const context = await browser.newContext({ acceptDownloads: true, extraHTTPHeaders: identity });
  const page = await context.newPage();
  const violations = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  await page.goto(`${base}/pgwy/request/ast.html`);
  const explained = await page.locator("#layout").innerText();
  assert.match(explained, /zip file with 2 certificate files/);
  assert.deepEqual(await page.locator("#layout li").allInnerTexts(), ["authentication", "signing"]);
  assert.match(explained, /same password|password you choose/);

  await page.fill("#password", "Str0ng-Pass!");
  await page.fill("#confirm", "Str0ng-Pass!");
  const download = page.waitForEvent("download");
  await page.keyboard.press("Enter");
  const file = await download;
  assert.equal(file.suggestedFilename(), "Alice Andersson.zip");
  const saved = `${dir}/${file.suggestedFilename()}`;
  await file.saveAs(saved);
  const bytes = readFileSync(saved);
  assert.equal(bytes.subarray(0, 4).toString("hex"), "504b0304", "a zip (local file header)");
  await page.waitForFunction(() => document.getElementById("form").getAttribute("aria-busy") === "false");
  assert.match(await page.locator("#status").innerText(), /Alice Andersson\.zip has been downloaded/);
  assert.deepEqual(violations, [], "Content-Security-Policy violations");
  console.log("ok");
} finally {
  await browser.close();
}
