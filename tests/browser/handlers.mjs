// The PIN page per handler and an operator's template, in headless Chromium, keyboard only.
// Usage: node handlers.mjs BASE_URL SCREENSHOT_DIR   (exits non-zero with a message on failure)
// The gateway behind BASE_URL has handler.2 (filter `staff`, PIN at least 10 characters, no
// legacy profile, the bundled page) and conf/pages/handler.1.html =
// docs/examples/pages/ast.sv.html (Swedish) for handler.1 (`/pgwy/ast`).
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const [base, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

/** Opens `path` in a fresh context with the proxy's identity headers; records CSP violations and POSTs. */
async function open(path, commonname) {
  const context = await browser.newContext({
    acceptDownloads: true,
    extraHTTPHeaders: { commonname, country: "SE", email: "staff@example.com" },
    viewport: { width: 390, height: 844 },
  });
  const page = await context.newPage();
  const violations = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  const posts = [];
  page.on("request", (r) => { if (r.method() === "POST") posts.push(new URL(r.url()).pathname); });
  await page.goto(`${base}${path}`);
  return { context, page, violations, posts };
}

/** Types the PIN twice (keyboard only) and submits; returns the download. */
async function submit(page, pin) {
  await page.fill("#password", "");
  await page.fill("#confirm", "");
  await page.focus("#password");
  await page.keyboard.type(pin);
  await page.keyboard.press("Tab");
  await page.keyboard.type(pin);
  await page.keyboard.press("Enter");
}

try {
  // 1. The second handler's page: its own PIN rules, posting to its own path.
  const staff = await open("/pgwy/request/staff/ast.html", "Stina Staff");
  const { page } = staff;
  assert.equal(await page.locator("#form").getAttribute("action"), "/pgwy/ast/staff");
  assert.match(await page.locator("#policy").innerText(), /10 to 128 characters/);
  assert.equal(await page.locator("input[name=profile]").count(), 0, "handler.2 offers no legacy file");
  await submit(page, "Short-123");
  await page.waitForFunction(() => document.getElementById("alert").textContent.length > 0);
  assert.match(await page.locator("#alert").innerText(), /at least 10/);
  assert.deepEqual(staff.posts, [], "a PIN below handler.2's minimum must not be submitted");
  const download = page.waitForEvent("download");
  await submit(page, "Long-enough-PIN");
  const file = await download;
  assert.equal(file.suggestedFilename(), "Stina Staff.p12");
  await page.waitForFunction(() => document.getElementById("form").getAttribute("aria-busy") === "false");
  assert.deepEqual(staff.posts, ["/pgwy/ast/staff"]);
  assert.match(await page.locator("#status").innerText(), /downloaded/);
  await page.screenshot({ path: `${shots}/staff.png`, fullPage: true });
  assert.deepEqual(staff.violations, [], "Content-Security-Policy violations on the staff page");

  // 2. handler.1 through the operator's Swedish template.
  const sv = await open("/pgwy/request/ast.html", "Sven Svensson");
  const p = sv.page;
  assert.equal(await p.locator("html").getAttribute("lang"), "sv");
  assert.equal(await p.title(), "Hämta ditt mjuka certifikat");
  assert.equal(await p.locator("#form").getAttribute("action"), "/pgwy/ast");
  assert.match(await p.locator("#policy").innerText(), /^6 till 128 tecken: bokstäver/);
  assert.equal(await p.locator("input[name=profile]").count(), 1, "the default handler offers the legacy file");
  assert.match(await p.locator("label.check").innerText(), /Fil för äldre enheter/);
  // The template's own script runs (its hash is in the policy): Swedish messages.
  await submit(p, "abc");
  await p.waitForFunction(() => document.getElementById("alert").textContent.length > 0);
  assert.match(await p.locator("#alert").innerText(), /Lösenordet måste ha minst 6 tecken/);
  await p.fill("#password", "Str0ng-Pass!");
  await p.fill("#confirm", "Str0ng-Pass?");
  await p.keyboard.press("Enter");
  await p.waitForFunction(() => /matchar inte/.test(document.getElementById("alert").textContent));
  assert.deepEqual(sv.posts, []);
  const svDownload = p.waitForEvent("download");
  await submit(p, "Str0ng-Pass!");
  assert.equal((await svDownload).suggestedFilename(), "Sven Svensson.p12");
  await p.waitForFunction(() => /har laddats ned/.test(document.getElementById("status").textContent));
  assert.deepEqual(sv.posts, ["/pgwy/ast"]);
  await p.screenshot({ path: `${shots}/sv.png`, fullPage: true });
  assert.deepEqual(sv.violations, [], "Content-Security-Policy violations on the Swedish page");
  console.log("ok");
} finally {
  await browser.close();
}
