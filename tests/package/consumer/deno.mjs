// Deno importing the npm package (node_modules of the scratch project): the `deno` condition
// installs Deno's backends; one signature through the stack. The test verifies it.
import { newMpcClient } from "wallet-mpc/client";
import { openFileKeyStore } from "wallet-mpc/client/file_key_store";
import { getModPowBackends } from "wallet-mpc/core/math";

const env = Deno.env.toObject();
const keyStore = await openFileKeyStore({ path: env.KEY_FILE, identity: env.AGE_IDENTITY });
const client = newMpcClient({
  serviceUrl: env.SERVICE_URL,
  gatewayUrl: env.GATEWAY_URL,
  token: env.TOKEN,
  keyStore,
});
const sig = await client.signTx(env.DIGEST, "alice", { path: "m/3" });
const b = getModPowBackends();
console.log(JSON.stringify({
  signature: sig,
  backends: { public: b.public.name, secret: b.secret.name },
}));
