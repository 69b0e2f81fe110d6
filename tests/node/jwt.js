// Packet Broker style tokens for the ljs-join tests, made with Node's own crypto:
//   node jwt.js keygen DIR                      -> DIR/{ec,ed,rsa}.pem and DIR/jwks.json
//   node jwt.js sign DIR ALG ISS AUD EXP NBF    -> a JWT (ALG ES256|RS256|EdDSA; EXP/NBF seconds from now)
const crypto = require("crypto");
const fs = require("fs");
const [cmd, dir, ...a] = process.argv.slice(2);
const kinds = { ES256: ["ec", "ec-1"], RS256: ["rsa", "rsa-1"], EdDSA: ["ed", "ed-1"] };
const b64u = (b) => Buffer.from(b).toString("base64url");
if (cmd === "keygen") {
  const keys = [];
  for (const [name, kid, type, opts] of [
    ["ec", "ec-1", "ec", { namedCurve: "P-256" }],
    ["rsa", "rsa-1", "rsa", { modulusLength: 2048 }],
    ["ed", "ed-1", "ed25519", {}],
  ]) {
    const { privateKey, publicKey } = crypto.generateKeyPairSync(type, opts);
    fs.writeFileSync(`${dir}/${name}.pem`, privateKey.export({ type: "pkcs8", format: "pem" }));
    keys.push({ ...publicKey.export({ format: "jwk" }), kid });
  }
  fs.writeFileSync(`${dir}/jwks.json`, JSON.stringify({ keys }));
} else if (cmd === "sign") {
  const [alg, iss, aud, exp, nbf] = a;
  const [name, kid] = kinds[alg];
  const now = Math.floor(Date.now() / 1000);
  const head = b64u(JSON.stringify({ alg, typ: "JWT", kid }));
  const body = b64u(JSON.stringify({ iss, aud, exp: now + Number(exp), nbf: now + Number(nbf), sub: "pb" }));
  const key = crypto.createPrivateKey(fs.readFileSync(`${dir}/${name}.pem`));
  const data = Buffer.from(`${head}.${body}`);
  const sig = alg === "EdDSA" ? crypto.sign(null, data, key)
    : crypto.sign("sha256", data, alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" } : key);
  console.log(`${head}.${body}.${b64u(sig)}`);
}
