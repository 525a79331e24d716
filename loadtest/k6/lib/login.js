// Login tokens signed here, as the user service signs them (HS256 JWT), for scenarios whose
// `login` is "minted": argon2 sign-ups for thousands of people would measure the hash.
import crypto from "k6/crypto";
import encoding from "k6/encoding";

function part(object) {
  return encoding.b64encode(JSON.stringify(object), "rawurl");
}

export function mintToken(secret, userId, email, ttlSeconds) {
  const now = Math.floor(Date.now() / 1000);
  const header = part({ alg: "HS256", typ: "JWT" });
  const claims = part({
    sub: userId,
    email: email,
    roles: [],
    aud: __ENV.JWT_AUDIENCE || "ticketing",
    iss: __ENV.JWT_ISSUER || "ticketing-user",
    iat: now,
    exp: now + ttlSeconds,
  });
  const signature = crypto.hmac("sha256", secret, `${header}.${claims}`, "base64rawurl");
  return `${header}.${claims}.${signature}`;
}
