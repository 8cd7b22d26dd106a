// The single sign-on journey in headless Chromium (run from tests/e2e/sso_journey.rs), one step
// per command; each prints one JSON line with what the page showed and exits non-zero on
// failure.
//
//   node sso.mjs token  JSON   sign in at the provider through the front, read the PIN page,
//                              send the PIN (with forged identity headers added by the browser),
//                              save the download; optionally let the sign-in end and go
//                              through "Sign in again" for a second token.
//   node sso.mjs refused JSON  sign in and read the PIN page's refusal.
//   node sso.mjs visit JSON    open a URL in a Chromium whose HOME and profile are given (its
//                              NSS database, its automatic client certificate selection).
//
// JSON: {"url", "user", "password", "pin", "downloads", "shots", "forged": {header: value},
//        "expire": bool, "home", "profile"} as each command needs. `shots`: a directory for the
// screenshots of each step (sso-<n>-<step>.png), or "" for none.
import { chromium } from "playwright-core";

const [command, json] = process.argv.slice(2);
const options = JSON.parse(json);
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const VIEWPORT = { width: 720, height: 640 };
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

async function shot(page, name) {
  if (!options.shots) return;
  await page.screenshot({ path: `${options.shots}/${name}.png`, fullPage: true });
}

// The provider's sign-in form, filled in and sent; resolves once the browser is back at `back`.
async function signIn(page, back, name) {
  await page.waitForSelector("#username", { timeout: 30000 });
  if (name) await shot(page, name);
  await page.fill("#username", options.user);
  await page.fill("#password", options.password);
  await Promise.all([
    page.waitForURL((u) => u.toString().startsWith(back), { timeout: 30000, waitUntil: "load" }),
    page.click("button[type=submit]"),
  ]);
}

// What the PIN page says about the person.
async function pinPage(page) {
  const text = async (selector) => (await page.$(selector)) ? (await page.textContent(selector)).trim() : null;
  return {
    person: await text("#person"),
    certificates: await page.$$eval("#certificates li", (items) => items.map((li) => li.textContent.trim())),
    policy: await text("#policy"),
    refusal: await text("#refusal-message"),
    refusalCode: await text("#refusal-code"),
  };
}

async function fillPin(page) {
  await page.fill("#password", options.pin);
  await page.fill("#confirm", options.pin);
}

// Sends the form and saves the download; `slow` holds the post back long enough to see the
// progress animation.
async function download(page, name, slowShot) {
  const saved = page.waitForEvent("download", { timeout: 60000 });
  await page.keyboard.press("Enter");
  if (slowShot) {
    await page.waitForSelector("form[aria-busy=true]", { timeout: 10000 });
    await shot(page, slowShot);
  }
  const file = await saved;
  const failure = await file.failure();
  if (failure) throw new Error(`download failed: ${failure}`);
  const path = `${options.downloads}/${name}-${file.suggestedFilename()}`;
  await file.saveAs(path);
  // The animation stops and the page says so.
  await page.waitForSelector("form[aria-busy=false]", { timeout: 10000 });
  await page.waitForFunction(() => document.getElementById("status").textContent.includes("downloaded"));
  return { suggested: file.suggestedFilename(), saved: path, status: (await page.textContent("#status")).trim() };
}

async function token() {
  const browser = await chromium.launch({ executablePath, args: ARGS });
  const out = {};
  try {
    // The front's certificate is the demo `localhost` one; the browser was not told its CA.
    const context = await browser.newContext({ acceptDownloads: true, ignoreHTTPSErrors: true, viewport: VIEWPORT });
    const page = await context.newPage();
    let slow = 0;
    // The browser adds forged identity headers to every request to the gateway's paths.
    await page.route("**/pgwy/**", async (route) => {
      if (slow && route.request().method() === "POST") await new Promise((r) => setTimeout(r, slow));
      await route.continue({ headers: { ...route.request().headers(), ...(options.forged || {}) } });
    });
    const front = new URL(options.url).origin;
    await page.goto(options.url);
    out.signInAt = page.url();
    await signIn(page, options.url, "sso-1-sign-in");
    out.page = await pinPage(page);
    await shot(page, "sso-2-pin-page");
    await fillPin(page);
    slow = options.shots ? 1500 : 0;
    out.first = await download(page, "first", "sso-3-creating");
    slow = 0;
    await shot(page, "sso-4-downloaded");
    out.cookies = (await context.cookies(front)).map((c) => `${c.name}=${c.value}`);
    if (options.expire) {
      // The sign-in ends (Apache's session and the provider's): the next post is not a token.
      await context.clearCookies();
      await fillPin(page);
      await page.keyboard.press("Enter");
      await page.waitForSelector("#signin:not([hidden])", { timeout: 30000 });
      out.ended = (await page.textContent("#alert")).trim();
      await shot(page, "sso-5-sign-in-ended");
      await page.click("#signin");
      await signIn(page, options.url, "");
      out.again = await pinPage(page);
      await fillPin(page);
      out.second = await download(page, "second", "");
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

async function refused() {
  const browser = await chromium.launch({ executablePath, args: ARGS });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: VIEWPORT });
    const page = await context.newPage();
    await page.goto(options.url);
    await signIn(page, options.url, "");
    const shown = await pinPage(page);
    shown.form = (await page.$("#form")) !== null;
    await shot(page, "sso-8-refused");
    console.log(JSON.stringify(shown));
  } finally {
    await browser.close();
  }
}

async function visit() {
  // A persistent profile: its preferences hold the automatic certificate selection; HOME makes
  // ~/.pki/nssdb the NSS database the token was imported into. TLS is checked for real (the
  // gateway's root CA is trusted in that database).
  const context = await chromium.launchPersistentContext(options.profile, {
    executablePath, args: ARGS, viewport: VIEWPORT, env: { ...process.env, HOME: options.home },
  });
  try {
    const page = await context.newPage();
    const response = await page.goto(options.url, { timeout: 30000 });
    const status = response.status();
    const text = (await page.textContent("body")).trim();
    const dn = (await page.$("#dn")) ? (await page.textContent("#dn")).trim() : null;
    await shot(page, options.name);
    console.log(JSON.stringify({ status, dn, text }));
  } finally {
    await context.close();
  }
}

await ({ token, refused, visit })[command]();
