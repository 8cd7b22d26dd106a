// Drives /pgwy/request/ast.html in headless Chromium the way a person would: keyboard only.
// Usage: node page.mjs BASE_URL SCREENSHOT_DIR   (exits non-zero with a message on failure)
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const [base, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  // The authenticating proxy is simulated by headers the browser adds to every request.
  const identity = { commonname: "Alice Andersson", country: "SE", email: "alice@example.com" };
  const context = await browser.newContext({ acceptDownloads: true, extraHTTPHeaders: identity,
                                             viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  // The page's CSP allows its inline script and style by hash only: any violation (a hash
  // that no longer matches, an inline handler) shows up as a console error.
  const violations = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  const requests = [];
  page.on("request", (r) => { if (r.method() === "POST") requests.push(r.url()); });
  await page.goto(`${base}/pgwy/request/ast.html`);
  assert.equal(await page.locator("input[type=password]").count(), 2);
  assert.match(await page.locator("#policy").innerText(), /6 to 128 characters/);
  await page.screenshot({ path: `${shots}/page.png`, fullPage: true });

  // Keyboard only: the PIN field has focus on load.
  await page.keyboard.type("Str0ng-Pass!");
  await page.keyboard.press("Tab");
  await page.keyboard.type("Str0ng-Pass?");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.getElementById("alert").textContent.length > 0);
  assert.match(await page.locator("#alert").innerText(), /do not match/);
  assert.equal(requests.length, 0, "a mismatching PIN must not be submitted");

  // Too short: refused before submit.
  await page.fill("#password", "123");
  await page.fill("#confirm", "123");
  await page.keyboard.press("Enter");
  assert.match(await page.locator("#alert").innerText(), /at least 6/);
  assert.equal(requests.length, 0);

  // Success: the token downloads, the animation stops, the status says so.
  await page.fill("#password", "Str0ng-Pass!");
  await page.fill("#confirm", "Str0ng-Pass!");
  const busyDuring = page.waitForFunction(() => document.getElementById("form").getAttribute("aria-busy") === "true");
  const download = page.waitForEvent("download");
  await page.focus("#confirm");
  await page.keyboard.press("Enter");
  await busyDuring;
  const file = await download;
  assert.equal(file.suggestedFilename(), "Alice Andersson.p12");
  await page.waitForFunction(() => document.getElementById("form").getAttribute("aria-busy") === "false");
  assert.match(await page.locator("#status").innerText(), /downloaded/);
  assert.equal(await page.locator("#alert").innerText(), "");
  const cookies = await context.cookies();
  assert.ok(cookies.some((c) => c.name === "downloaded"), "downloaded cookie present");
  await page.screenshot({ path: `${shots}/done.png`, fullPage: true });
  assert.deepEqual(violations, [], "Content-Security-Policy violations");
  assert.ok(!/unsafe-inline/.test((await (await context.request.get(`${base}/pgwy/request/ast.html`)).headers())["content-security-policy"]));

  // A refusal from the server is shown in the alert region (no commonname header this time).
  // This front adds the identity to the form's post only, so the page itself names no one (a
  // page that carries the identity explains such a refusal before any PIN: tests/e2e/sso_journey.rs).
  const bare = await browser.newContext();
  const page2 = await bare.newPage();
  await page2.route("**/pgwy/ast", (route) =>
    route.continue({ headers: { ...route.request().headers(), country: "SE" } }));
  await page2.goto(`${base}/pgwy/request/ast.html`);
  await page2.fill("#password", "Str0ng-Pass!");
  await page2.fill("#confirm", "Str0ng-Pass!");
  await page2.keyboard.press("Enter");
  await page2.waitForFunction(() => document.getElementById("alert").textContent.length > 0);
  // A configuration error (the front sent no commonname): a short message for the user and the
  // request id; the operator's detail (which header, which rule) is in the log and audit row.
  const message = await page2.locator("#alert").innerText();
  for (const header of ["commonname", "givenname", "surname", "country", "locality", "organization",
                        "organizationalunit", "serialnumber", "email", "upn", "header"]) {
    assert.ok(!message.toLowerCase().includes(header), `the message names ${header}: ${message}`);
  }
  assert.match(message, /support desk/);
  assert.match(message, /request id [0-9a-zA-Z-]+/);
  assert.equal(await page2.locator("#signin").isVisible(), false, "no sign-in offer for a gateway refusal");
  assert.equal(await page2.locator("#form").getAttribute("aria-busy"), "false");
  assert.equal(await page2.locator("#status").innerText(), "", "no progress text after a failure");
  await page2.screenshot({ path: `${shots}/error.png`, fullPage: true });

  // The front answers 401 (the sign-in session ended): the page offers to sign in again, and the
  // button reloads the page through the front. The front is stood in for by a route answering
  // the POST as an authenticating proxy would (no X-Ast-Error header).
  await page2.route("**/pgwy/ast", (route) => route.fulfill({ status: 401, contentType: "text/html",
                                                               body: "<h1>Unauthorized</h1>" }));
  await page2.fill("#password", "Str0ng-Pass!");
  await page2.fill("#confirm", "Str0ng-Pass!");
  await page2.keyboard.press("Enter");
  await page2.locator("#signin").waitFor({ state: "visible" });
  assert.match(await page2.locator("#alert").innerText(), /sign-in has ended/i);
  assert.ok(!/401/.test(await page2.locator("#alert").innerText()), "no bare status for the user");
  const reloaded = page2.waitForNavigation();
  await page2.keyboard.press("Enter"); // the sign-in button has focus
  await reloaded;
  assert.equal(await page2.locator("#signin").isVisible(), false);
  console.log("ok");
} finally {
  await browser.close();
}
