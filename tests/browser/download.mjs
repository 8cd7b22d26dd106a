// Downloads tokens in headless Chromium and prints the file names the browser chose, for a
// user whose name is not ASCII (run from tests/e2e/interop.rs), twice:
//   page:   through the PIN page's script (fetch, then a download link with the name it read
//           from Content-Disposition);
//   native: the same form submitted without the script (form.submit()), so Chromium itself
//           reads Content-Disposition (RFC 6266 filename*).
// Usage: node download.mjs BASE_URL COMMON_NAME DOWNLOAD_DIR
// Prints one JSON line per download {"how", "suggested", "saved", "bytes"}; exits non-zero on
// failure.
import { chromium } from "playwright-core";

const [base, commonName, dir] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  // The authenticating proxy is simulated by adding the identity headers to the form's POST
  // (UTF-8 bytes on the wire, as a proxy would send them).
  await page.route("**/pgwy/ast*", (route) =>
    route.continue({ headers: { ...route.request().headers(), commonname: commonName, country: "SE" } }));
  const { statSync } = await import("node:fs");
  const save = async (how, download) => {
    const file = await download;
    const failure = await file.failure();
    if (failure) throw new Error(`${how}: download failed: ${failure}`);
    const saved = `${dir}/${how}-${file.suggestedFilename()}`;
    await file.saveAs(saved);
    console.log(JSON.stringify({ how, suggested: file.suggestedFilename(), saved, bytes: statSync(saved).size }));
  };

  await page.goto(`${base}/pgwy/request/ast.html`);
  await page.fill("#password", "Str0ng-Pass!");
  await page.fill("#confirm", "Str0ng-Pass!");
  let download = page.waitForEvent("download");
  await page.keyboard.press("Enter");
  await save("page", download);

  const native = await context.newPage();
  await native.route("**/pgwy/ast*", (route) =>
    route.continue({ headers: { ...route.request().headers(), commonname: commonName, country: "SE" } }));
  await native.goto(`${base}/pgwy/request/ast.html`);
  await native.fill("#password", "Str0ng-Pass!");
  await native.fill("#confirm", "Str0ng-Pass!");
  download = native.waitForEvent("download");
  // HTMLFormElement.prototype.submit: the form has a button with id "submit" that shadows it.
  await native.evaluate(() => { const f = document.getElementById("form"); setTimeout(() => HTMLFormElement.prototype.submit.call(f), 0); });
  await save("native", download);
} finally {
  await browser.close();
}
