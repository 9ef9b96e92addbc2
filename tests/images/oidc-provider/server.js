// The OpenID Connect provider of Girofle's SSO tests: panva's oidc-provider (a certified
// implementation), with discovery, dynamic client registration behind an initial access
// token (RFC 7591), registration management (RFC 7592, the registration access token
// rotated on each update, as the library does by default) and its development login
// forms, which tests drive over HTTP. Settings come from the environment.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const issuer = process.env.OIDC_ISSUER;
const initialAccessToken = process.env.OIDC_INITIAL_ACCESS_TOKEN;
const port = Number(process.env.OIDC_PORT || 3000);
if (!issuer || !initialAccessToken) {
  console.error('OIDC_ISSUER and OIDC_INITIAL_ACCESS_TOKEN are required');
  process.exit(2);
}

const provider = new Provider(issuer, {
  features: {
    registration: { enabled: true, initialAccessToken },
    registrationManagement: { enabled: true },
    devInteractions: { enabled: true },
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: `${sub}@idp.example.org`, email_verified: true, name: sub };
      },
    };
  },
});
provider.on('registration_create.success', (ctx, client) => console.log(`registered ${client.clientId}`));
provider.on('registration_update.success', (ctx, client) => console.log(`updated ${client.clientId}`));
provider.on('registration_delete.success', (ctx, client) => console.log(`deleted ${client.clientId}`));
// HTTPS when given a certificate (GitLab's OpenID Connect client discovers over HTTPS only).
const listening = () => console.log(`oidc-provider ${issuer} on ${port}`);
if (process.env.OIDC_TLS_CERT) {
  const tls = { cert: readFileSync(process.env.OIDC_TLS_CERT), key: readFileSync(process.env.OIDC_TLS_KEY) };
  https.createServer(tls, provider.callback()).listen(port, listening);
} else {
  provider.listen(port, listening);
}
