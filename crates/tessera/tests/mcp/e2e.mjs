#!/usr/bin/env node
// End-to-end check: the official MCP TypeScript SDK, with its own OAuth client code,
// connects to an MCP server protected by Tessera.
//
//   node e2e.mjs ISSUER [MCP_PORT]      (e.g. node e2e.mjs http://127.0.0.1:8090 8091)
//
// Starts an MCP server (the SDK's McpServer, Streamable HTTP, one tool `echo`) on
// 127.0.0.1:MCP_PORT whose resource URL is http://127.0.0.1:MCP_PORT/mcp; it accepts
// only Tessera's access tokens (verified with jose against Tessera's JWKS: iss, aud =
// that URL, typ at+jwt, scope mcp:tools) and publishes RFC 9728 metadata. Then runs the
// SDK's client: 401 -> protected resource metadata -> authorization server metadata ->
// dynamic client registration -> code flow with PKCE and `resource` (Tessera's sign-in
// and consent pages driven with plain fetch and a cookie jar, as user alice) -> token ->
// tools/list and tools/call echo; then, when Tessera issued a refresh token, a refresh
// after a 401 (see README.md). Exits 0 when every check passes, 1 (with diagnostics)
// otherwise.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { metadataHandler } from '@modelcontextprotocol/sdk/server/auth/handlers/metadata.js';
import { getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { z } from 'zod';

const SDK_VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url), 'utf8')
).version;
const USERNAME = 'alice';
const PASSWORD = 'alice-password-1';
const SCOPE = 'mcp:tools';
const TIME_LIMIT_MS = 90_000;

const issuer = process.argv[2];
const mcpPort = Number(process.argv[3] ?? 8091);
if (!issuer || !/^https?:\/\//.test(issuer) || !Number.isInteger(mcpPort) || mcpPort <= 0 || mcpPort > 65535) {
  console.error('usage: node e2e.mjs ISSUER [MCP_PORT]   e.g. node e2e.mjs http://127.0.0.1:8090 8091');
  process.exit(2);
}
const resource = `http://127.0.0.1:${mcpPort}/mcp`;
const resourceMetadataUrl = getOAuthProtectedResourceMetadataUrl(new URL(resource));

// ---------------------------------------------------------------- diagnostics

/** Requests the SDK's client made (MCP and OAuth alike), in order. */
const sdkTrace = [];
/** Requests the scripted browser made to Tessera's pages. */
const browserTrace = [];
/** What the MCP server saw. */
const serverTrace = [];
let lastPage;
const checks = [];

function check(condition, message, detail) {
  if (!condition) {
    const error = new Error(`check failed: ${message}`);
    error.detail = detail;
    throw error;
  }
  checks.push(message);
}

function short(text, max = 200) {
  const s = String(text ?? '');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function printDiagnostics(error) {
  console.error(`\nFAIL: ${error?.stack ?? error}`);
  if (error?.detail !== undefined) console.error('detail:', JSON.stringify(error.detail, null, 2));
  if (error?.cause) console.error('cause:', error.cause);
  console.error(`\nchecks passed before the failure (${checks.length}):`);
  for (const c of checks) console.error(`  ok ${c}`);
  console.error('\nSDK client requests:');
  for (const t of sdkTrace) console.error(`  ${t}`);
  console.error('\nbrowser requests:');
  for (const t of browserTrace) console.error(`  ${t}`);
  console.error('\nMCP server saw:');
  for (const t of serverTrace) console.error(`  ${t}`);
  if (lastPage) {
    console.error(`\nlast page (${lastPage.status} ${lastPage.url}):\n${short(lastPage.body, 3000)}`);
  }
}

// ------------------------------------------------------------- the MCP server

async function startMcpServer(asMetadata) {
  const jwks = createRemoteJWKSet(new URL(asMetadata.jwks_uri));

  /** The SDK's OAuthTokenVerifier: a Tessera access token (RFC 9068) for this resource. */
  const verifier = {
    async verifyAccessToken(token) {
      let payload;
      try {
        ({ payload } = await jwtVerify(token, jwks, { issuer, audience: resource, typ: 'at+jwt' }));
      } catch (error) {
        serverTrace.push(`token refused: ${error.code ?? ''} ${error.message}`);
        throw new InvalidTokenError(`token refused: ${error.message}`);
      }
      const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
      return {
        token,
        clientId: String(payload.client_id ?? ''),
        scopes,
        expiresAt: payload.exp,
        // jwtVerify has checked that `aud` is (or contains) this resource.
        resource: new URL(Array.isArray(payload.aud) ? resource : payload.aud),
        extra: { sub: payload.sub, aud: payload.aud }
      };
    }
  };

  const app = createMcpExpressApp({ host: '127.0.0.1' });
  app.use((req, res, next) => {
    res.on('finish', () => {
      const auth = req.headers.authorization ? 'with bearer' : 'no token';
      serverTrace.push(`${req.method} ${req.originalUrl} (${auth}) -> ${res.statusCode}`);
    });
    next();
  });

  // RFC 9728 protected resource metadata, at the path-specific well-known URL.
  app.use(
    new URL(resourceMetadataUrl).pathname,
    metadataHandler({
      resource,
      authorization_servers: [issuer],
      scopes_supported: [SCOPE],
      bearer_methods_supported: ['header'],
      resource_name: 'Tessera MCP e2e echo server'
    })
  );

  const bearer = requireBearerAuth({
    verifier,
    requiredScopes: [SCOPE],
    resourceMetadataUrl,
    expectedResource: new URL(resource)
  });

  // Stateless Streamable HTTP: a fresh server and transport per request.
  app.post('/mcp', bearer, async (req, res) => {
    const server = new McpServer({ name: 'tessera-e2e', version: '1.0.0' });
    server.registerTool(
      'echo',
      { description: 'Echoes its text', inputSchema: { text: z.string() } },
      async ({ text }, extra) => {
        serverTrace.push(
          `echo called by client ${extra.authInfo?.clientId} for sub ${extra.authInfo?.extra?.sub}` +
            ` (aud ${extra.authInfo?.extra?.aud}, scopes ${extra.authInfo?.scopes?.join(' ')})`
        );
        return { content: [{ type: 'text', text }] };
      }
    );
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (error) {
      serverTrace.push(`MCP handler error: ${error.stack ?? error}`);
      if (!res.headersSent) {
        res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null });
      }
    }
  });
  // No server-initiated stream and no sessions in stateless mode.
  const notAllowed = (req, res) =>
    res
      .status(405)
      .set('Allow', 'POST')
      .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
  app.get('/mcp', bearer, notAllowed);
  app.delete('/mcp', bearer, notAllowed);

  return await new Promise((resolve, reject) => {
    const listener = app.listen(mcpPort, '127.0.0.1', () => resolve(listener));
    listener.once('error', reject);
  });
}

// --------------------------------------------------- the client's redirect URI

/** A loopback listener for the redirect URI (RFC 8252 §7.3), as a native MCP client has. */
async function startCallbackServer() {
  let deliver;
  const received = new Promise(resolve => (deliver = resolve));
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('Signed in; you may close this window.');
    deliver(url.searchParams);
  });
  await new Promise((resolve, reject) => {
    server.listen(0, '127.0.0.1', resolve);
    server.once('error', reject);
  });
  return { server, port: server.address().port, received };
}

// ---------------------------------------------------- the SDK's OAuth provider

/** An in-memory OAuthClientProvider (the SDK's interface), one session. */
class InMemoryOAuthProvider {
  constructor(redirectUrl) {
    this._redirectUrl = redirectUrl;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._state = undefined;
    this.authorizationUrls = [];
    this.savedTokens = [];
  }
  get redirectUrl() {
    return this._redirectUrl;
  }
  get clientMetadata() {
    return {
      client_name: `Tessera MCP e2e (MCP TypeScript SDK ${SDK_VERSION})`,
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native'
    };
  }
  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }
  get expectedState() {
    return this._state;
  }
  clientInformation() {
    return this._clientInformation;
  }
  saveClientInformation(info) {
    this._clientInformation = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
    this.savedTokens.push(tokens);
  }
  redirectToAuthorization(url) {
    // A real client opens a browser here; the script drives the pages afterwards.
    this.authorizationUrls.push(new URL(url));
  }
  saveCodeVerifier(verifier) {
    this._codeVerifier = verifier;
  }
  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no code verifier saved');
    return this._codeVerifier;
  }
  invalidateCredentials(scope) {
    sdkTrace.push(`(provider.invalidateCredentials(${scope}))`);
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
  }
}

/** A fetch that records every request the SDK makes; responses of `registrationEndpoint` are kept. */
function tracingFetch(registrationEndpoint, registrations) {
  return async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    let note = '';
    if (init?.body instanceof URLSearchParams) note = ` grant_type=${init.body.get('grant_type')}`;
    const response = await fetch(input, init);
    const www = response.headers.get('www-authenticate');
    sdkTrace.push(`${method} ${url}${note} -> ${response.status}${www ? ` [WWW-Authenticate: ${www}]` : ''}`);
    if (method === 'POST' && url === registrationEndpoint) {
      const body = await response.clone().json().catch(() => undefined);
      registrations.push({ status: response.status, body });
    }
    return response;
  };
}

// ------------------------------------------------- a scripted browser for Tessera

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

function attributes(tag) {
  const attrs = {};
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>=`]+)))?/g;
  for (const m of tag.matchAll(re)) attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  return attrs;
}

/** The page's forms: action (absolute), method, named inputs and buttons. */
function parseForms(html, pageUrl) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1]);
    const inputs = [...m[2].matchAll(/<input\b([^>]*)>/gi)].map(i => attributes(i[1]));
    const buttons = [...m[2].matchAll(/<button\b([^>]*)>/gi)].map(b => attributes(b[1]));
    forms.push({
      action: new URL(attrs.action || pageUrl, pageUrl).href,
      method: (attrs.method || 'get').toUpperCase(),
      inputs,
      buttons
    });
  }
  return forms;
}

class Browser {
  constructor(origin) {
    this.origin = new URL(origin).origin;
    this.cookies = new Map();
  }

  async request(url, { method = 'GET', form } = {}) {
    const headers = {};
    if (new URL(url).origin === this.origin && this.cookies.size > 0) {
      headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    }
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url, { method, headers, body, redirect: 'manual' });
    if (new URL(url).origin === this.origin) {
      for (const cookie of response.headers.getSetCookie()) {
        const [pair, ...attrs] = cookie.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        const expired = attrs.some(a => /^\s*max-age\s*=\s*0\s*$/i.test(a));
        if (value === '' || expired) this.cookies.delete(name);
        else this.cookies.set(name, value);
      }
    }
    const location = response.headers.get('location');
    const page = {
      url,
      status: response.status,
      location: location ? new URL(location, url).href : undefined,
      body: await response.text()
    };
    browserTrace.push(`${method} ${short(url, 160)} -> ${page.status}${location ? ` Location: ${short(location, 160)}` : ''}`);
    lastPage = page;
    return page;
  }

  submit(form, values) {
    const fields = [];
    for (const input of form.inputs) {
      if (!input.name || ['submit', 'button', 'checkbox', 'radio'].includes(input.type)) continue;
      fields.push([input.name, values[input.name] ?? input.value ?? '']);
    }
    for (const [name, value] of Object.entries(values)) {
      if (!fields.some(([n]) => n === name)) fields.push([name, value]);
    }
    return this.request(form.action, { method: form.method, form: fields });
  }

  /** From the authorization URL to the redirect URI: signs in, allows, returns the callback URL. */
  async authorize(authorizationUrl, redirectUri) {
    let page = await this.request(authorizationUrl);
    let signedIn = false;
    let consented = false;
    for (let step = 0; step < 20; step++) {
      if (page.location) {
        if (page.location.startsWith(redirectUri)) return { callback: new URL(page.location), consented };
        if (new URL(page.location).origin !== this.origin) {
          throw new Error(`redirect to neither Tessera nor the redirect URI: ${page.location}`);
        }
        page = await this.request(page.location);
        continue;
      }
      if (page.status !== 200) throw new Error(`Tessera answered ${page.status} at ${page.url}`);
      const forms = parseForms(page.body, page.url);
      const login = forms.find(f => f.inputs.some(i => i.name === 'password'));
      const consent = forms.find(f => f.buttons.some(b => b.name === 'decision' && b.value === 'allow'));
      if (login) {
        if (signedIn) throw new Error('the sign-in form came back after signing in (wrong password?)');
        check(login.inputs.some(i => i.name === 'csrf_token' && i.value), 'the sign-in form carries a CSRF token');
        signedIn = true;
        page = await this.submit(login, { username: USERNAME, password: PASSWORD });
      } else if (consent) {
        if (consented) throw new Error('the consent form came back after allowing');
        check(consent.inputs.some(i => i.name === 'csrf_token' && i.value), 'the consent form carries a CSRF token');
        consented = true;
        page = await this.submit(consent, { decision: 'allow' });
      } else {
        throw new Error(`a page with neither the sign-in nor the consent form: ${page.url}`);
      }
    }
    throw new Error('too many steps between the authorization URL and the redirect URI');
  }
}

// ------------------------------------------------------------------- the run

async function getJson(url) {
  const response = await fetch(url);
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

function scopesOf(claims) {
  return typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
}

async function connectClient(provider, fetchFn) {
  const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider, fetch: fetchFn });
  const client = new Client({ name: 'tessera-e2e-client', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

/** A stale access token: after the 401 the SDK refreshes (with `resource`) and retries. */
async function refreshLeg({ provider, fetchFn, tokenEndpoint, before }) {
  provider._tokens = { ...before, access_token: 'expired-or-revoked' };
  const refreshes = () => sdkTrace.filter(e => e.startsWith(`POST ${tokenEndpoint} grant_type=refresh_token -> 200`));
  const refreshesBefore = refreshes().length;
  const second = await connectClient(provider, fetchFn);
  check(
    refreshes().length === refreshesBefore + 1,
    'after a 401 the SDK refreshed its token at the token endpoint',
    sdkTrace.join('\n')
  );
  const refreshed = provider.tokens();
  check(refreshed.access_token !== before.access_token, 'a new access token', Object.keys(refreshed));
  check(refreshed.refresh_token && refreshed.refresh_token !== before.refresh_token, 'a new (rotated) refresh token', Object.keys(refreshed));
  const refreshedClaims = decodeJwt(refreshed.access_token);
  check(
    refreshedClaims.aud === resource || (Array.isArray(refreshedClaims.aud) && refreshedClaims.aud[0] === resource),
    "the refreshed token's aud is still the MCP resource URL",
    refreshedClaims
  );
  const again = await second.client.callTool({ name: 'echo', arguments: { text: 'again' } });
  check(again.content?.[0]?.text === 'again', 'tools/call echo works with the refreshed token', again);
  await second.client.close();
}

async function main() {
  console.log(`MCP TypeScript SDK ${SDK_VERSION}; issuer ${issuer}; MCP server ${resource}`);

  // Tessera's metadata (RFC 8414): what the MCP server needs (jwks_uri) and what the
  // client will need (registration_endpoint).
  const asm = await getJson(new URL('/.well-known/oauth-authorization-server', issuer));
  check(asm.status === 200 && asm.json, `GET ${issuer}/.well-known/oauth-authorization-server is 200 JSON`, asm.text);
  const metadata = asm.json;
  check(metadata.issuer === issuer, 'the metadata issuer is the issuer given', metadata.issuer);
  check(typeof metadata.jwks_uri === 'string', 'the metadata names jwks_uri', metadata);
  check(
    typeof metadata.registration_endpoint === 'string',
    'the metadata names registration_endpoint (is [registration] enabled = true?)',
    metadata
  );
  check(
    (metadata.code_challenge_methods_supported ?? []).includes('S256'),
    'the metadata lists S256 in code_challenge_methods_supported',
    metadata.code_challenge_methods_supported
  );

  const mcpListener = await startMcpServer(metadata);
  const callback = await startCallbackServer();
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`;
  try {
    // The resource server as any client finds it.
    const bare = await fetch(resource, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
    });
    const challenge = bare.headers.get('www-authenticate') ?? '';
    check(bare.status === 401, 'the MCP server answers 401 without a token', bare.status);
    check(
      /^Bearer\b/.test(challenge) && challenge.includes(`resource_metadata="${resourceMetadataUrl}"`),
      'its WWW-Authenticate is Bearer with resource_metadata (RFC 9728 §5.1)',
      challenge
    );
    const prm = await getJson(resourceMetadataUrl);
    check(
      prm.status === 200 &&
        prm.json?.resource === resource &&
        JSON.stringify(prm.json?.authorization_servers) === JSON.stringify([issuer]),
      'the protected resource metadata names the resource and Tessera',
      prm.text
    );
    const garbage = await fetch(resource, { method: 'POST', headers: { authorization: 'Bearer not-a-token' } });
    check(garbage.status === 401, 'the MCP server answers 401 to a token that is not Tessera\'s', garbage.status);

    // 1. The SDK's client, without credentials: 401 -> discovery -> registration -> redirect.
    const registrations = [];
    const fetchFn = tracingFetch(metadata.registration_endpoint, registrations);
    const provider = new InMemoryOAuthProvider(redirectUri);
    const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider, fetch: fetchFn });
    let firstError;
    try {
      await new Client({ name: 'tessera-e2e-client', version: '1.0.0' }).connect(transport);
    } catch (error) {
      firstError = error;
    }
    check(firstError instanceof UnauthorizedError, 'the first connect ends in UnauthorizedError (authorization needed)', String(firstError?.stack ?? firstError));
    const trace = sdkTrace.join('\n');
    const order = [
      [`POST ${resource} -> 401`, 'the SDK got 401 from the MCP server'],
      [`GET ${resourceMetadataUrl} -> 200`, 'the SDK fetched the protected resource metadata (RFC 9728)'],
      [`GET ${new URL('/.well-known/oauth-authorization-server', issuer).href} -> 200`, "the SDK fetched Tessera's authorization server metadata (RFC 8414)"],
      [`POST ${metadata.registration_endpoint} -> 201`, 'the SDK registered a client at the registration endpoint (RFC 7591)']
    ];
    let at = -1;
    for (const [line, message] of order) {
      const next = sdkTrace.findIndex((entry, i) => i > at && entry.startsWith(line));
      check(next > at, message, trace);
      at = next;
    }
    check(registrations.length === 1 && registrations[0].status === 201, 'exactly one registration', registrations);
    const registered = registrations[0].body;
    check(
      JSON.stringify(registered?.grant_types?.slice().sort()) === '["authorization_code","refresh_token"]',
      'the registration keeps grant_types authorization_code and refresh_token',
      registered
    );
    const clientInfo = provider.clientInformation();
    check(
      typeof registered?.client_id === 'string' && clientInfo?.client_id === registered.client_id,
      'the SDK stored the client_id that /register returned',
      { registered, clientInfo }
    );
    check(registered.client_secret === undefined, 'a public client (none) gets no secret', registered);
    check(
      scopesOf(registered).includes(SCOPE),
      `the registration carries ${SCOPE} (from scopes_supported)`,
      registered.scope
    );
    const clientId = registered.client_id;

    check(provider.authorizationUrls.length === 1, 'the SDK asked to open one authorization URL', provider.authorizationUrls);
    const authorizationUrl = provider.authorizationUrls[0];
    const q = authorizationUrl.searchParams;
    check(
      authorizationUrl.href.startsWith(metadata.authorization_endpoint),
      "the authorization URL is Tessera's authorization_endpoint",
      authorizationUrl.href
    );
    check(q.get('client_id') === clientId, 'it names the registered client_id', q.get('client_id'));
    check(q.get('response_type') === 'code', 'response_type=code', q.get('response_type'));
    check(q.get('code_challenge_method') === 'S256' && q.get('code_challenge'), 'PKCE S256', authorizationUrl.href);
    check(q.get('resource') === resource, `resource=${resource} (RFC 8707)`, q.get('resource'));
    check(q.get('redirect_uri') === redirectUri, 'redirect_uri is the loopback callback', q.get('redirect_uri'));
    check((q.get('scope') ?? '').split(' ').includes(SCOPE), `scope includes ${SCOPE}`, q.get('scope'));

    // 2. The user signs in and allows; the browser lands on the callback.
    const browser = new Browser(issuer);
    const { callback: landed, consented } = await browser.authorize(authorizationUrl.href, redirectUri);
    await browser.request(landed.href); // the browser arrives at the client's listener
    const params = await callback.received;
    check(!params.get('error'), 'no error at the callback', Object.fromEntries(params));
    check(consented, 'Tessera showed the consent page for the registered client');
    const code = params.get('code');
    check(code, 'a code at the callback', Object.fromEntries(params));
    check(params.get('state') === provider.expectedState, 'the state came back unchanged', Object.fromEntries(params));
    check(params.get('iss') === issuer, 'iss at the callback is the issuer (RFC 9207)', params.get('iss'));

    // 3. The SDK exchanges the code (with its PKCE verifier and resource).
    const tokenEndpoint = metadata.token_endpoint;
    await transport.finishAuth(code);
    check(
      sdkTrace.some(e => e.startsWith(`POST ${tokenEndpoint} grant_type=authorization_code -> 200`)),
      'the SDK exchanged the code at the token endpoint',
      sdkTrace.join('\n')
    );
    const tokens = provider.tokens();
    check(typeof tokens?.access_token === 'string', 'the SDK saved an access token', tokens);
    const { payload: claims, protectedHeader } = await jwtVerify(
      tokens.access_token,
      createRemoteJWKSet(new URL(metadata.jwks_uri)),
      { issuer }
    );
    check(protectedHeader.typ === 'at+jwt', 'the access token is an RFC 9068 JWT (typ at+jwt)', protectedHeader);
    check(
      claims.aud === resource || (Array.isArray(claims.aud) && claims.aud.length === 1 && claims.aud[0] === resource),
      `the access token's aud is the MCP resource URL ${resource}`,
      claims
    );
    check(claims.client_id === clientId, "the access token's client_id is the registered client", claims);
    check(scopesOf(claims).includes(SCOPE), `the access token's scope includes ${SCOPE}`, claims);
    check(typeof claims.sub === 'string' && claims.sub, 'the access token has a subject', claims);
    await transport.close();

    // 4. Connect again with the token: list tools and call echo.
    const first = await connectClient(provider, fetchFn);
    const tools = await first.client.listTools();
    check(tools.tools.some(t => t.name === 'echo'), 'tools/list shows echo', tools);
    const message = `hello from the MCP TypeScript SDK ${SDK_VERSION} via Tessera`;
    const result = await first.client.callTool({ name: 'echo', arguments: { text: message } });
    console.log('echo result:', JSON.stringify(result));
    check(!result.isError && result.content?.[0]?.text === message, 'tools/call echo returns the text', result);
    check(
      serverTrace.some(e => e.startsWith(`echo called by client ${clientId} for sub ${claims.sub}`)),
      'the MCP server saw the verified token (client and subject) in the tool call',
      serverTrace
    );
    await first.client.close();

    // 5. The access token goes bad: the SDK refreshes with the refresh token (and resource).
    // Tessera issues a refresh token only when offline_access is granted, and this SDK
    // asks for the resource's scopes only (see README.md here): without one, say so,
    // and fail only when TESSERA_MCP_E2E_REQUIRE_REFRESH is set.
    const before = provider.tokens();
    if (typeof before.refresh_token !== 'string') {
      if (process.env.TESSERA_MCP_E2E_REQUIRE_REFRESH) {
        check(false, 'a refresh token was issued (TESSERA_MCP_E2E_REQUIRE_REFRESH is set)', {
          registered_grant_types: registered.grant_types,
          registered_scope: registered.scope,
          authorization_request_scope: q.get('scope'),
          token_response_scope: tokens.scope,
          token_response_fields: Object.keys(tokens)
        });
      }
      console.log(
        `NOTE: no refresh token (client registered with grant_types ${JSON.stringify(registered.grant_types)}` +
          ` and scope "${registered.scope}", authorization request scope "${q.get('scope')}",` +
          ` token response scope "${tokens.scope}"): the refresh leg is skipped`
      );
    } else {
      await refreshLeg({ provider, fetchFn, tokenEndpoint, before });
    }
    check(registrations.length === 1 && provider.authorizationUrls.length === 1, 'no second registration or sign-in');

    console.log(`\nregistered client_id: ${clientId}`);
    console.log(`access token claims: ${JSON.stringify({ iss: claims.iss, aud: claims.aud, sub: claims.sub, client_id: claims.client_id, scope: claims.scope })}`);
    console.log('\nSDK client requests:');
    for (const t of sdkTrace) console.log(`  ${t}`);
    console.log(`\nPASS: ${checks.length} checks`);
    for (const c of checks) console.log(`  ok ${c}`);
  } finally {
    mcpListener.close();
    mcpListener.closeAllConnections?.();
    callback.server.close();
    callback.server.closeAllConnections?.();
  }
}

const timer = setTimeout(() => {
  printDiagnostics(new Error(`timed out after ${TIME_LIMIT_MS / 1000} s`));
  process.exit(1);
}, TIME_LIMIT_MS);

main().then(
  () => {
    clearTimeout(timer);
    process.exit(0);
  },
  error => {
    clearTimeout(timer);
    printDiagnostics(error);
    process.exit(1);
  }
);
