// oidc-provider (v9) for lmsauth's write scenarios and its signing algorithms, beside
// peers-bench's oidc_provider_server.mjs (client_credentials, RS256) and configured as it is:
//
// - POST /token, grant_type=authorization_code (scenario 4's peer) and refresh_token (5's):
//   one confidential client (client_secret_post, as lmsauth's scenarios send it), opaque access
//   and refresh tokens kept by the default adapter, i.e. in memory. That adapter
//   (MemoryAdapter) is a 1,000-entry LRU, which evicts a run's minted codes before they are
//   presented; the same adapter class is given the same LRU sized for a whole run instead. Like Canvas, no id_token is
//   asked for (no `openid` scope), and a confidential client's refresh token does not rotate
//   (oidc-provider's default), so a refresh token may be presented again.
// - POST /token, grant_type=client_credentials with resource https://api.example: a JWT
//   access token signed with SIGN_ALG (RS256, ES256 or EdDSA): scenario 1's peer per algorithm.
//
// The codes and refresh tokens are minted in this process (the adapter is in memory) by a
// second server on ADMIN_PORT, which the load never touches:
//   POST /codes?n=N    -> N authorization codes, one per line (a grant each, 10-minute life)
//   POST /refresh?n=N  -> N refresh tokens, one per line
//
// Env: PORT, ADMIN_PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SIGN_ALG (default RS256).
// Run with cwd = the folder whose node_modules holds oidc-provider.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const requireFromCwd = createRequire(path.join(process.cwd(), 'noop.js'));
const entry = requireFromCwd.resolve('oidc-provider');
const { default: Provider } = await import(entry);
// Not in the package's exports: imported by file, to build the default adapter with a bigger LRU.
const lib = path.dirname(entry);
const { default: MemoryAdapter } = await import(pathToFileURL(path.join(lib, 'adapters', 'memory_adapter.js')));
const { default: LRU } = await import(pathToFileURL(path.join(lib, 'helpers', 'lru.js')));
const store = new LRU({ maxSize: 10_000_000 });

const PORT = Number(process.env.PORT || 9100);
const ADMIN_PORT = Number(process.env.ADMIN_PORT || 9101);
const CLIENT_ID = process.env.CLIENT_ID || 'bench-client';
const CLIENT_SECRET = process.env.CLIENT_SECRET || 'bench-secret-0123456789';
const REDIRECT_URI = process.env.REDIRECT_URI || 'https://client.example/callback';
const SIGN_ALG = process.env.SIGN_ALG || 'RS256';
const RESOURCE = 'https://api.example';
const ACCOUNT = 'bench-user';
const SCOPE = 'offline_access';

function jwk(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg };
}

// id_tokens (never issued here) need an RS256 key; the resource server signs with SIGN_ALG.
const keys = [jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rs256-1')];
if (SIGN_ALG === 'ES256') keys.push(jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es256-1'));
if (SIGN_ALG === 'EdDSA') keys.push(jwk('ed25519', {}, 'EdDSA', 'eddsa-1'));

const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    scope: `api:read ${SCOPE}`,
  }],
  jwks: { keys },
  adapter: (model) => new MemoryAdapter(model, store),
  scopes: ['api:read', SCOPE],
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf ?? undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: 'api:read',
          audience: RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: SIGN_ALG } },
        };
      },
    },
  },
  ttl: {
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || 600,
    AccessToken: 3600,
    AuthorizationCode: 600,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
  cookies: { keys: ['bench-cookie-key-not-used-by-token-endpoint'] },
};

const provider = new Provider(`http://127.0.0.1:${PORT}`, configuration);
provider.proxy = false;
provider.on('server_error', (ctx, err) => {
  console.error('server_error', err);
});

async function newGrant() {
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CLIENT_ID });
  grant.addOIDCScope(SCOPE);
  return grant.save();
}

async function mint(kind, n) {
  const client = await provider.Client.find(CLIENT_ID);
  const out = [];
  const grantId = kind === 'refresh' ? await newGrant() : null;
  for (let i = 0; i < n; i += 1) {
    if (kind === 'codes') {
      const code = new provider.AuthorizationCode({
        accountId: ACCOUNT,
        client,
        grantId: await newGrant(),
        redirectUri: REDIRECT_URI,
        scope: SCOPE,
      });
      out.push(await code.save());
    } else {
      const token = new provider.RefreshToken({
        accountId: ACCOUNT,
        client,
        grantId,
        gty: 'authorization_code',
        rotations: 0,
        scope: SCOPE,
      });
      out.push(await token.save());
    }
  }
  return out;
}

http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://admin');
  const kind = url.pathname.slice(1);
  if (req.method !== 'POST' || !['codes', 'refresh'].includes(kind)) {
    res.writeHead(404).end();
    return;
  }
  try {
    const values = await mint(kind, Number(url.searchParams.get('n') || 1));
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${values.join('\n')}\n`);
  } catch (err) {
    console.error(err);
    res.writeHead(500).end(String(err));
  }
}).listen(ADMIN_PORT, '127.0.0.1');

provider.listen(PORT, '127.0.0.1', () => {
  console.log(`oidc-provider (grants, ${SIGN_ALG}) on http://127.0.0.1:${PORT} pid=${process.pid} node=${process.version}`);
});
