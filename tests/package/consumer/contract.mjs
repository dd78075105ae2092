// The consumer contract of the package (README "Integrate with a chain", ethers), run with plain
// `node` in a scratch project that installed the packed tarball. The test gives the endpoints,
// the key file and the recipient in the environment and checks the result on the chain.
import process from "node:process";
import { newMpcClient } from "wallet-mpc/client";
import { openFileKeyStore } from "wallet-mpc/client/file_key_store";
import { MpcEthersSigner } from "wallet-mpc/ethers";
import { JsonRpcProvider, parseEther } from "ethers";
import { getModPowBackends } from "wallet-mpc/core/math";

const { KEY_FILE: keyFile, AGE_IDENTITY: identity, SERVICE_URL: serviceUrl } = process.env;
const { GATEWAY_URL: gatewayUrl, TOKEN: token, RPC_URL: rpc, TO: to } = process.env;

const keyStore = await openFileKeyStore({ path: keyFile, identity });
const client = newMpcClient({ serviceUrl, gatewayUrl, token, keyStore });
const provider = new JsonRpcProvider(rpc);
const signer = new MpcEthersSigner({ client, accountId: "alice", provider });
const tx = await signer.sendTransaction({ to, value: parseEther("0.25") });
const receipt = await tx.wait(); // mined on anvil

const backends = getModPowBackends();
console.log(JSON.stringify({
  hash: tx.hash,
  from: await signer.getAddress(),
  status: receipt.status,
  backends: { public: backends.public.name, secret: backends.secret.name },
  secretConstantTime: backends.secret.constantTime,
}));
provider.destroy();
await client.close(); // stops the background presigning the signer started
