// openid-client 6 against lmsauth, one step per run, driven by tests/e2e/test_openid_client.py.
// The browser part of the flow (login and consent) is the Python test's; this script does what
// a Node application does with the library: discovery, the authorization URL with PKCE, the
// code exchange, API calls, refresh and RFC 7009 revocation. Input: one JSON object as argv[2];
// output: one JSON object on stdout.
import * as client from 'openid-client'

const input = JSON.parse(process.argv[2])

async function configuration() {
  return client.discovery(
    new URL(input.issuer),
    input.client_id,
    undefined,
    client.ClientSecretBasic(input.client_secret),
    { execute: [client.allowInsecureRequests], algorithm: 'oauth2' },
  )
}

async function apiStatus(config, accessToken) {
  try {
    const response = await client.fetchProtectedResource(config, accessToken, new URL(input.api_url), 'GET')
    return { status: response.status, body: await response.json() }
  } catch (error) {
    // oauth4webapi raises on a 401 that carries a WWW-Authenticate challenge.
    return { status: error.response?.status ?? null, error: error.code ?? String(error) }
  }
}

async function start() {
  const config = await configuration()
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: input.redirect_uri,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  })
  return {
    url: url.href,
    verifier,
    state,
    revocation_endpoint: config.serverMetadata().revocation_endpoint,
  }
}

async function finish() {
  const config = await configuration()
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
    pkceCodeVerifier: input.verifier,
    expectedState: input.state,
  })
  const first = await apiStatus(config, tokens.access_token)
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  const afterRefresh = await apiStatus(config, refreshed.access_token)
  const oldAccess = await apiStatus(config, tokens.access_token)
  const refreshToken = refreshed.refresh_token ?? tokens.refresh_token
  await client.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' })
  const afterRevocation = await apiStatus(config, refreshed.access_token)
  let refreshAfterRevocation
  try {
    await client.refreshTokenGrant(config, refreshToken)
    refreshAfterRevocation = 'accepted'
  } catch (error) {
    refreshAfterRevocation = error.error ?? error.code ?? String(error)
  }
  return {
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    rotated: refreshed.refresh_token !== undefined && refreshed.refresh_token !== tokens.refresh_token,
    first,
    after_refresh: afterRefresh,
    old_access: oldAccess,
    after_revocation: afterRevocation,
    refresh_after_revocation: refreshAfterRevocation,
  }
}

const steps = { start, finish }
try {
  process.stdout.write(JSON.stringify(await steps[input.step]()))
} catch (error) {
  process.stdout.write(JSON.stringify({ failed: true, code: error.code ?? null, message: String(error), error: error.error ?? null }))
  process.exitCode = 1
}
