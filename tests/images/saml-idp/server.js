// The SAML identity provider of Girofle's SSO tests: samlify as an IdP. It takes the
// service provider's metadata (what `girofle sso metadata` prints) on PUT /sp, answers
// GET /sso (HTTP-Redirect binding, as omniauth-saml sends) with a login form, and POST
// /sso/login with the browser form that posts a signed SAML response to the service
// provider's assertion consumer service. The response is a complete assertion: samlify's
// default one has an empty AuthnStatement, which ruby-saml (rightly) rejects.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import samlify from 'samlify';  // CommonJS: its exports object

const base = process.env.SAML_BASE_URL;
const port = Number(process.env.SAML_PORT || 3000);
// GitLab's side validates the XML; the IdP only reads AuthnRequests it is sent.
samlify.setSchemaValidator({ validate: async () => 'skipped' });

const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const TEMPLATE = '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" InResponseTo="{InResponseTo}"><saml:Issuer>{Issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{StatusCode}"/></samlp:Status><saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="{AssertionID}" Version="2.0" IssueInstant="{IssueInstant}"><saml:Issuer>{Issuer}</saml:Issuer><saml:Subject><saml:NameID Format="{NameIDFormat}">{NameID}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{NotOnOrAfter}" Recipient="{Destination}" InResponseTo="{InResponseTo}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{NotBefore}" NotOnOrAfter="{NotOnOrAfter}"><saml:AudienceRestriction><saml:Audience>{Audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{IssueInstant}" SessionIndex="{AssertionID}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue xsi:type="xs:string">{Email}</saml:AttributeValue></saml:Attribute><saml:Attribute Name="name"><saml:AttributeValue xsi:type="xs:string">{Name}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>';

const idp = samlify.IdentityProvider({
  entityID: `${base}/metadata`,
  signingCert: readFileSync(process.env.SAML_CERT),
  privateKey: readFileSync(process.env.SAML_KEY),
  nameIDFormat: [PERSISTENT],
  singleSignOnService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: `${base}/sso` }],
  loginResponseTemplate: { context: TEMPLATE },
});
let sp = null;

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (res, body) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(`<html><body>${body}</body></html>\n`);
};
const readBody = (req) => new Promise((resolve) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => resolve(Buffer.concat(chunks).toString()));
});

async function handle(req, res) {
  const url = new URL(req.url, base);
  if (req.method === 'PUT' && url.pathname === '/sp') {
    // The service provider as its metadata says; its responses are signed as a whole.
    sp = samlify.ServiceProvider({ metadata: await readBody(req), wantMessageSigned: true });
    res.writeHead(204).end();
    return;
  }
  if (req.method === 'GET' && url.pathname === '/sso') {
    if (!sp || !url.searchParams.get('SAMLRequest')) {
      res.writeHead(400).end('no SAMLRequest, or no service provider known\n');
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    const parsed = await idp.parseLoginRequest(sp, 'redirect', { query, octetString: '' });
    page(res, `<form method="post" action="/sso/login">
<input type="hidden" name="request_id" value="${escape(parsed.extract.request.id)}">
<input type="hidden" name="relay_state" value="${escape(query.RelayState || '')}">
<input type="text" name="login"><button type="submit">Sign in</button></form>`);
    return;
  }
  if (req.method === 'POST' && url.pathname === '/sso/login') {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get('login');
    const requestId = form.get('request_id');
    const now = new Date();
    const later = new Date(now.getTime() + 5 * 60 * 1000);
    const acs = sp.entityMeta.getAssertionConsumerService('post');
    const { context } = await idp.createLoginResponse(sp, { extract: { request: { id: requestId } } }, 'post', { email: login }, (template) => {
      const id = `_${crypto.randomUUID()}`;
      return {
        id,
        context: samlify.SamlLib.replaceTagsByValue(template, {
          ID: id,
          AssertionID: `_${crypto.randomUUID()}`,
          Destination: acs,
          Audience: sp.entityMeta.getEntityID(),
          Issuer: idp.entityMeta.getEntityID(),
          IssueInstant: now.toISOString(),
          NotBefore: now.toISOString(),
          NotOnOrAfter: later.toISOString(),
          InResponseTo: requestId,
          StatusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
          NameIDFormat: PERSISTENT,
          NameID: login,
          Email: `${login}@saml.example.org`,
          Name: login,
        }),
      };
    });
    page(res, `<form method="post" action="${escape(acs)}">
<input type="hidden" name="SAMLResponse" value="${escape(context)}">
<input type="hidden" name="RelayState" value="${escape(form.get('relay_state') || '')}">
<button type="submit">Continue</button></form>`);
    return;
  }
  res.writeHead(404).end('not found\n');
}

http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(err);
    res.writeHead(500).end(`${err}\n`);
  });
}).listen(port, () => console.log(`samlify IdP ${base} on ${port}`));
