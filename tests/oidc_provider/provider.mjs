// A real OpenID provider for the tests (the oidc-provider package), over plain HTTP.
//
// Environment: PORT (to listen on 127.0.0.1), ISSUER (default http://127.0.0.1:PORT),
// KEYS_FILE (a JSON Web Key Set with private keys: the signing keys; the tests rotate
// them by restarting with another file), REDIRECT_URI (the dashboard's callback),
// GROUPS_FILE (optional: a JSON object of client id -> groups, read at each token, so a
// test moves a program in and out of a group).
//
// Clients: "dashboard" (authorization code with PKCE, secret "dashboard-secret") and, for
// programs, client-credentials clients named below; their JWT access tokens carry the
// audience asked for with `resource` (default "urn:wes-gateway:api"). People sign in through the
// development login form: any login name, any password; "carol" is in group wes-admins.
import { existsSync, readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;
const jwks = JSON.parse(readFileSync(process.env.KEYS_FILE, 'utf8'));
const redirectUri = process.env.REDIRECT_URI || 'http://127.0.0.1/ui/oidc/callback';
const DEFAULT_AUDIENCE = 'urn:wes-gateway:api';

// Program clients: their token claims, and how long their tokens live (seconds).
const programs = {
  'alice-cli': {
    claims: { preferred_username: 'alice.sso', email: 'Alice@Example.org', email_verified: true },
    ttl: 600,
  },
  'carol-cli': { claims: { preferred_username: 'carol', groups: ['wes-admins'] }, ttl: 600 },
  'odd-cli': { claims: { preferred_username: 'Ann Lee <ann@example.org>' }, ttl: 600 },
  'short-cli': { claims: { preferred_username: 'brief' }, ttl: 5 },
  // Another account (its own sub) claiming alice-cli's user name.
  'mallory-cli': {
    claims: { preferred_username: 'alice.sso', email: 'boss@example.org', email_verified: false },
    ttl: 600,
  },
  // Its groups come from GROUPS_FILE.
  'dave-cli': { claims: { preferred_username: 'dave' }, ttl: 600 },
};

function groupsOf(clientId) {
  const file = process.env.GROUPS_FILE;
  if (!file || !existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8'))[clientId];
}

const people = {
  carol: { groups: ['wes-admins'] },
};

const clients = [
  {
    client_id: 'dashboard',
    client_secret: 'dashboard-secret',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
  },
  ...Object.keys(programs).map((id) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  })),
];

const provider = new Provider(issuer, {
  clients,
  jwks,
  pkce: { required: () => true },
  conformIdTokenClaims: false, // the ID token carries the profile claims asked for
  claims: { openid: ['sub'], profile: ['preferred_username', 'groups'] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => DEFAULT_AUDIENCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: 'api',
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: programs[client.clientId]?.ttl ?? 600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  async extraTokenClaims(ctx, token) {
    const claims = programs[token.clientId]?.claims;
    const groups = groupsOf(token.clientId);
    return groups === undefined ? claims : { ...claims, groups };
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, groups: people[id]?.groups ?? [] };
      },
    };
  },
  // The dashboard is first-party: no consent screen.
  async loadExistingGrant(ctx) {
    const existing = ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (existing) return ctx.oidc.provider.Grant.find(existing);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile');
    grant.addOIDCClaims(['preferred_username', 'groups']);
    await grant.save();
    return grant;
  },
  ttl: { IdToken: 600, AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600 },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  // The tests wait for this line.
  process.stdout.write(`listening ${server.address().port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
