// An OpenID Connect provider for the single sign-on tests (tests/e2e/sso_journey.rs): the
// certified `oidc-provider` package with a user name / password login page and three users: one
// with a Latin-1 name, one whose name is outside the Basic Multilingual Plane (and who has no
// e-mail address, so a forged `email` header has no claim to hide behind), and one without a
// name.
//
// Usage: node provider.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI
// Listens on 127.0.0.1 on a port the system picks and prints one line, `issuer http://…`, once
// it accepts connections; logs problems to standard error. Stops on SIGTERM (the test kills it
// when it ends).
import http from "node:http";
import Provider from "oidc-provider";

const [clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!redirectUri) {
  console.error("usage: node provider.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI");
  process.exit(2);
}

// The directory: user name → password and the claims released to the relying party.
const USERS = {
  zoe: {
    password: "zoe-password",
    claims: { name: "Zoë Ångström", given_name: "Zoë", family_name: "Ångström",
              email: "zoe.angstrom@example.org", email_verified: true },
  },
  taro: {
    password: "taro-password",
    claims: { name: "𠮷田 太郎", given_name: "太郎", family_name: "𠮷田" },
  },
  // An account the directory has no name for: the certificate service must say so.
  kim: {
    password: "kim-password",
    claims: { email: "kim@example.org", email_verified: true },
  },
};

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) =>
  ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function loginPage(uid, problem) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Example Corp sign-in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font-family: system-ui, sans-serif; background: #eef1f5; display: flex; justify-content: center; padding: 2rem 1rem; margin: 0; }
  main { background: #fff; padding: 1.5rem 2rem; border-radius: .5rem; max-width: 22rem; width: 100%; box-shadow: 0 1px 4px #0002; }
  h1 { font-size: 1.3rem; margin-top: 0; } label { display: block; margin-top: 1rem; font-weight: 600; }
  input { width: 100%; box-sizing: border-box; font-size: 1rem; padding: .5rem; margin-top: .3rem; }
  button { margin-top: 1.5rem; width: 100%; font-size: 1rem; padding: .6rem; border: 0; border-radius: .3rem; background: #2d6a4f; color: #fff; }
  .problem { color: #b00020; }
</style></head>
<body><main>
<h1>Example Corp sign-in</h1>
<p>Sign in to continue to the certificate service.</p>
${problem ? `<p class="problem" role="alert">${escapeHtml(problem)}</p>` : ""}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label for="username">User name</label><input id="username" name="username" autocomplete="username" autofocus>
  <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
  <button type="submit">Sign in</button>
</form>
</main></body></html>`;
}

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    }],
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name", "given_name", "family_name"],
    },
    async findAccount(_ctx, id) {
      const user = USERS[id];
      if (!user) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...user.claims }; } };
    },
    // The certificate service is a first-party application: no consent screen.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope("openid email profile");
      await grant.save();
      return grant;
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ["ast-gateway-test-provider-cookie-key"] },
  });
  provider.on("server_error", (_ctx, error) => console.error(`server_error: ${error.stack}`));
  const callback = provider.callback();

  server.on("request", async (req, res) => {
    const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(req.url.split("?")[0]);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      const html = (status, body) => {
        res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
        res.end(body);
      };
      if (req.method === "GET" && !match[2]) return html(200, loginPage(details.uid));
      if (req.method !== "POST" || !match[2]) return html(405, "method not allowed");
      let body = "";
      for await (const chunk of req) {
        body += chunk;
        if (body.length > 4096) return html(413, "too large");
      }
      const form = new URLSearchParams(body);
      const user = USERS[form.get("username")];
      if (!user || user.password !== form.get("password")) {
        return html(200, loginPage(details.uid, "Wrong user name or password."));
      }
      await provider.interactionFinished(req, res, { login: { accountId: form.get("username") } },
                                         { mergeWithLastSubmission: false });
    } catch (error) {
      console.error(`interaction: ${error.stack}`);
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8" });
      res.end(`sign-in failed: ${error.message}`);
    }
  });
  console.log(`issuer ${issuer}`);
});

process.on("SIGTERM", () => process.exit(0));
