/**
 * The enclave end to end, isolated: the boot program (enclave/boot.ts) runs in a network
 * namespace with only `lo`, linked to the outside by nothing but UNIX sockets standing in for
 * its vsock ports (channel.ts test mode); the parent program (enclave/parent.ts) runs outside
 * with IMDSv2 credentials from a fake metadata service, S3 in moto, and provisions it; KMS is
 * moto behind a stand-in over real TLS (a test CA, NODE_EXTRA_CA_CERTS) that enforces
 * `Recipient` and a PCR0 policy; the NSM is the test NSM served on a channel; AWS's vsock-proxy
 * is a forwarder from the parent's vsock 5000 to the stand-in.
 *
 * - the parent boots the enclave; a 2-of-2 sign goes through the ingress bridge (real gRPC over
 *   h2c) and the gateway egress; openssl verifies the signature; no log holds a secret;
 * - the enclave has no route to anything but its channels;
 * - a wrong PCR0 is refused by KMS and the service never starts; an answer carrying a Plaintext
 *   (a host answering for KMS) is refused;
 * - after a refresh inside the enclave the new key share file is in S3 (new versions, the old
 *   one kept) and a restarted enclave boots with it and signs.
 *
 * Run by `deno task test:enclave` (WALLET_MPC_ENCLAVE=1), as root; skipped loudly without root,
 * `ip netns`, moto or openssl. The service generates real safe primes for the refresh (about a
 * minute). The boot time measured is printed.
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CreateKeyCommand, EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { encodeAccountRecords, fromEntry } from "../../core/account_records.ts";
import { encryptKeyShareFileBytes, generateAgeIdentity } from "../../keystore/key_store.ts";
import { MemoryKeyStore } from "../../keystore/memory_key_store.ts";
import { newMpcClient } from "../../client/mpc_client.ts";
import { generateToken, hashToken } from "../../service/auth.ts";
import { createChannels, forward, type Forwarder, PARENT_CID } from "../../enclave/channel.ts";
import { createShareBucket } from "../../enclave/share_bucket.ts";
import type { Nsm } from "../../enclave/nsm.ts";
import { createFakeNsm } from "../../enclave/testing/fake_nsm.ts";
import { fakeImds } from "../../enclave/testing/fake_imds.ts";
import { type KmsStandIn, startKmsStandIn } from "../../enclave/testing/kms_standin.ts";
import { type Moto, motoMissing, startMoto } from "../../enclave/testing/moto.ts";
import { serveNsm } from "../../enclave/testing/nsm_server.ts";
import { DENO, type GatewayProcess, ROOT, startGateway } from "../../testing/processes.ts";
import { fixturePrimes, secretsOf } from "../../testing/accounts.ts";
import { ACCOUNT, e2eAccounts, randomDigest } from "../e2e/e2e_helpers.ts";
import { opensslVerify } from "../../testing/openssl.ts";
import { makeTestCa } from "../../testing/tls_ca.ts";
import { isolationMissing, type LoggedProcess, makeNetns, run, spawnLogged } from "./_harness.ts";

const skip = process.env.WALLET_MPC_ENCLAVE !== "1"
  ? "isolated enclave test: run deno task test:enclave (WALLET_MPC_ENCLAVE=1)"
  : isolationMissing() ?? motoMissing() ?? false;
if (skip && process.env.WALLET_MPC_ENCLAVE === "1") console.error(`isolated_test: ${skip}`);

const REGION = "us-east-1";
const BUCKET = "wallet-mpc-enclave";
const PREFIX = "test/";
const NSM_PORT = 9000;
const GOOD_PCR0 = new Uint8Array(48).fill(0x5a);
const WRONG_PCR0 = new Uint8Array(48).fill(0x5b);
const BOOT_MS = 120_000;

describe("the enclave in a network namespace", { skip }, () => {
  let dir: string;
  let sock: string;
  let moto: Moto;
  let kms: KmsStandIn;
  let gateway: GatewayProcess;
  let netns: { name: string; remove(): void };
  let imds: Deno.HttpServer;
  let imdsUrl: string;
  let keyArn: string;
  let persistent: { identity: string; recipient: string };
  let nsm: { nsm: Nsm; rootDer: Uint8Array };
  let token: string;
  let serviceConfig: string;
  let caFile: string;
  const forwarders: Forwarder[] = [];
  const listeners: Deno.Listener[] = [];
  let clientKeys: MemoryKeyStore;
  let secrets: string[] = [];
  const imdsSecret = "imds-secret-access-key-never-logged";
  let boots = 0;
  const running: LoggedProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "wallet-mpc-enclave-it-"));
    sock = join(dir, "vsock");
    Deno.mkdirSync(sock);
    moto = await startMoto();
    const tls = makeTestCa(dir);
    caFile = tls.caFile;
    nsm = await createFakeNsm({ pcrs: new Map([[0, GOOD_PCR0]]) });
    kms = await startKmsStandIn({
      moto: moto.endpoint,
      tls,
      pcr0: GOOD_PCR0,
      roots: () => [nsm.rootDer],
    });

    // The host side of the "hardware": the NSM, and AWS's vsock-proxy to KMS (parent vsock 5000).
    const host = createChannels({ mode: { kind: "unix", dir: sock }, localCid: PARENT_CID });
    const nsmListener = host.listen(NSM_PORT);
    listeners.push(nsmListener);
    void serveNsm(nsmListener, () => nsm.nsm);
    forwarders.push(
      forward(host.listen(5000), () => Deno.connect({ hostname: "127.0.0.1", port: kms.port })),
    );

    const metadata = fakeImds({ secretAccessKey: imdsSecret });
    await new Promise<void>((resolve) => {
      imds = Deno.serve({
        hostname: "127.0.0.1",
        port: 0,
        onListen: ({ port }) => {
          imdsUrl = `http://127.0.0.1:${port}`;
          resolve();
        },
      }, metadata.handler);
    });

    // AWS as the operator sets it up: a KMS key, the age key encrypted under it, the bucket.
    const credentials = { accessKeyId: "test", secretAccessKey: "test" };
    const kmsAdmin = new KMSClient({ region: REGION, endpoint: moto.endpoint, credentials });
    keyArn = (await kmsAdmin.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    persistent = await generateAgeIdentity();
    const ageKeyBlob = (await kmsAdmin.send(
      new EncryptCommand({
        KeyId: keyArn,
        Plaintext: new TextEncoder().encode(`# the enclave's age key\n${persistent.identity}\n`),
      }),
    )).CiphertextBlob!;
    kmsAdmin.destroy();
    const s3 = new S3Client({
      region: REGION,
      endpoint: moto.endpoint,
      forcePathStyle: true,
      credentials,
    });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}age-key.kms`, Body: ageKeyBlob }),
    );
    s3.destroy();

    // The key shares: the client's in memory, the service's age-encrypted to the age key and
    // published as the first version with the parent's own command.
    const [client, service] = await e2eAccounts();
    clientKeys = new MemoryKeyStore(client);
    secrets = [...service.values()].flatMap(secretsOf).concat(persistent.identity, imdsSecret);
    const file = join(dir, "service_key_shares.age");
    writeFileSync(
      file,
      await encryptKeyShareFileBytes(
        new TextEncoder().encode(
          encodeAccountRecords(new Map([...service].map(([id, e]) => [id, fromEntry(e)]))),
        ),
        {
          recipients: [persistent.recipient],
        },
      ),
    );
    const publish = spawnLogged(DENO, [
      "run",
      "-A",
      "--no-check",
      join(ROOT, "enclave/parent.ts"),
      "publish",
      "--file",
      file,
      ...awsFlags(),
    ]);
    assert.equal(await publish.exited, 0, publish.output());

    gateway = await startGateway("deno");
    token = generateToken();
    const callers = join(dir, "callers.yaml");
    writeFileSync(
      callers,
      `callers:\n  - id: enclave-it\n    token_sha256: ${hashToken(token)}\n    accounts: ["*"]\n`,
    );
    serviceConfig = join(dir, "sign-service.yaml");
    writeFileSync(
      serviceConfig,
      [
        "gateway: { url: http://127.0.0.1:8080 }",
        "server: { host: 127.0.0.1, port: 0, web_port: 0, index: 1 }",
        `auth: { tokens_file: ${callers} }`,
        "logging: { format: json }",
      ].join("\n") + "\n",
    );
    netns = makeNetns(`wmpc-${process.pid}`);
  });

  after(async () => {
    for (const p of running) await p.stop("SIGKILL").catch(() => {});
    for (const f of forwarders) f.close();
    for (const l of listeners) l.close();
    await imds?.shutdown();
    await kms?.stop();
    await gateway?.stop().catch(() => {});
    await moto?.stop();
    netns?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function awsFlags(): string[] {
    return [
      "--region",
      REGION,
      "--bucket",
      BUCKET,
      "--prefix",
      PREFIX,
      "--s3-endpoint",
      moto.endpoint,
      "--imds-endpoint",
      imdsUrl,
    ];
  }

  /** Starts the enclave in the namespace and the parent outside. */
  function boot() {
    boots++;
    const t0 = performance.now();
    const enclave = spawnLogged("ip", [
      "netns",
      "exec",
      netns.name,
      DENO,
      "run",
      "-A",
      "--no-check",
      "--unstable-vsock",
      join(ROOT, "enclave/boot.ts"),
      "--channel",
      `unix:${sock}`,
      "--nsm",
      `channel:${NSM_PORT}`,
      "--kms-key-id",
      keyArn,
      "--region",
      REGION,
      "--kms-endpoint",
      "https://localhost:443",
      "--age-recipient",
      persistent.recipient,
      "--service-config",
      serviceConfig,
      "--state-dir",
      join(dir, `state-${boots}`),
    ], { NODE_EXTRA_CA_CERTS: caFile });
    const parent = spawnLogged(DENO, [
      "run",
      "-A",
      "--no-check",
      "--unstable-vsock",
      join(ROOT, "enclave/parent.ts"),
      "run",
      "--channel",
      `unix:${sock}`,
      ...awsFlags(),
      "--ingress",
      "127.0.0.1:0=50051",
      "--ingress",
      "127.0.0.1:0=50052",
      "--egress",
      `8080=127.0.0.1:${gateway.port}`,
    ]);
    running.push(enclave, parent);
    return { enclave, parent, t0 };
  }

  async function bootReady() {
    const b = boot();
    const ready = await b.enclave.waitFor(
      "the enclave to be ready",
      (l) => l.msg === "enclave ready",
      BOOT_MS,
    );
    const ms = Math.round(performance.now() - b.t0);
    const p = await b.parent.waitFor(
      "the parent to be ready",
      (l) => l.msg === "parent ready",
      BOOT_MS,
    );
    const [grpc, web] = String(p.ingress_ports).split(",").map(Number);
    console.error(
      `isolated_test: enclave boot ${ms} ms from spawn to ready (boot_ms in the enclave ${ready.boot_ms})`,
    );
    return { ...b, grpc, web };
  }

  async function stop(...ps: LoggedProcess[]) {
    for (const p of ps) await p.stop("SIGTERM");
  }

  function client(grpcPort: number) {
    return newMpcClient({
      rpcTransport: createGrpcTransport({
        baseUrl: `http://127.0.0.1:${grpcPort}`,
      }),
      gatewayUrl: gateway.url,
      token,
      keyStore: clientKeys,
      generatePrimes: fixturePrimes(6),
    });
  }

  async function signAndVerify(grpcPort: number) {
    const digest = randomDigest();
    const sig = await client(grpcPort).signTx(digest, ACCOUNT, { path: "m/0/7" });
    assert.equal(opensslVerify(sig.publicKey, digest, sig.der), true, "openssl verifies");
    return sig;
  }

  function assertNoSecrets(...ps: LoggedProcess[]) {
    for (const p of ps) {
      const text = p.output();
      for (const s of secrets) assert.ok(!text.includes(s), "a secret appears in a log");
    }
  }

  test("the parent boots the enclave; a 2-of-2 sign through ingress and egress verifies", async () => {
    const b = await bootReady();
    const where = run("ip", ["netns", "identify", String(b.enclave.proc.pid)]).out.trim();
    assert.equal(where, netns.name, "the boot program runs in the namespace");
    await signAndVerify(b.grpc);
    // The web port's bridge too (Connect over HTTP/1.1).
    const web = newMpcClient({
      serviceUrl: `http://127.0.0.1:${b.web}`,
      gatewayUrl: gateway.url,
      token,
      keyStore: clientKeys,
    });
    assert.match((await web.service.health({})).status, /serving/);
    assert.equal(kms.sealed, 1, "one attested decrypt");
    await stop(b.enclave, b.parent);
    assertNoSecrets(b.enclave, b.parent);
  });

  test("the enclave has no route to anything but its channels", () => {
    const links = run("ip", ["-n", netns.name, "-o", "link", "show"]).out.trim().split("\n");
    assert.deepEqual(links.map((l) => l.split(":")[1].trim()), ["lo"]);
    assert.equal(run("ip", ["-n", netns.name, "route", "show"]).out.trim(), "");
    assert.equal(
      run("ip", ["-n", netns.name, "-6", "route", "show"]).out.trim().split("\n").filter((l) =>
        l && !l.includes("dev lo")
      ).length,
      0,
    );
    const probe = `
      const out = {};
      for (const [name, hostname, port] of [["moto", "127.0.0.1", ${
      new URL(moto.endpoint).port
    }], ["gateway", "127.0.0.1", ${gateway.port}], ["internet", "1.1.1.1", 443], ["host", "${hostAddress()}", ${gateway.port}]]) {
        try { (await Deno.connect({ hostname, port })).close(); out[name] = "connected"; }
        catch (e) { out[name] = e.name; }
      }
      console.log(JSON.stringify(out));`;
    const r = run("ip", ["netns", "exec", netns.name, DENO, "eval", probe]);
    const got = JSON.parse(r.out.trim().split("\n").at(-1)!);
    for (const [name, outcome] of Object.entries(got)) {
      assert.notEqual(outcome, "connected", `${name} reachable: ${r.out}`);
    }
  });

  test("a wrong PCR0 is refused by KMS and the service never starts", async () => {
    const good = nsm;
    nsm = { ...(await createFakeNsm({ pcrs: new Map([[0, WRONG_PCR0]]) })) };
    try {
      const b = boot();
      assert.equal(await b.enclave.exited, 1, b.enclave.output());
      const failed = b.enclave.lines.find((l) => l.msg === "enclave boot failed");
      assert.equal(failed?.step, "kms-decrypt");
      assert.match(String(failed?.message), /AccessDeniedException.*PCR0/);
      assert.ok(!b.enclave.lines.some((l) => l.msg === "listening"), "the service never listened");
      assert.match(kms.refusals.at(-1) ?? "", /PCR0 condition not met/);
      await stop(b.parent);
      assertNoSecrets(b.enclave, b.parent);
    } finally {
      nsm = good;
    }
  });

  test("a Decrypt answer carrying a Plaintext (a host answering for KMS) is refused", async () => {
    kms.mode = "plaintext";
    try {
      const b = boot();
      assert.equal(await b.enclave.exited, 1, b.enclave.output());
      const failed = b.enclave.lines.find((l) => l.msg === "enclave boot failed");
      assert.equal(failed?.step, "kms-decrypt");
      assert.equal(failed?.code, "plaintext-answer");
      assert.ok(!b.enclave.lines.some((l) => l.msg === "listening"));
      await stop(b.parent);
      assertNoSecrets(b.enclave, b.parent);
    } finally {
      kms.mode = "enforce";
    }
  });

  test("a refresh in the enclave reaches S3; a restarted enclave boots with it and signs", async () => {
    const s3 = new S3Client({
      region: REGION,
      endpoint: moto.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: "t", secretAccessKey: "t" },
    });
    const bucket = createShareBucket({ s3, bucket: BUCKET, prefix: PREFIX });
    try {
      const before = (await bucket.current())!.pointer;
      let b = await bootReady();
      const old = (await clientKeys.get(ACCOUNT))!.keyShare.x;
      const refreshed = await client(b.grpc).refresh(ACCOUNT);
      assert.notEqual(
        (await clientKeys.get(ACCOUNT))!.keyShare.x,
        old,
        "the client's share changed",
      );
      const after = (await bucket.current())!.pointer;
      assert.ok(after.generation >= before.generation + 2, "pending and promoted versions stored");
      const stored = b.parent.lines.filter((l) => l.msg === "key share file stored");
      assert.ok(stored.length >= 2);
      await stop(b.enclave, b.parent);
      assertNoSecrets(b.enclave, b.parent);

      b = await bootReady();
      const read = b.parent.lines.find((l) => l.msg === "files read from S3");
      assert.equal(read?.generation, after.generation, "the restarted enclave got the new file");
      const sig = await signAndVerify(b.grpc);
      assert.equal(await client(b.grpc).getPublicKey(ACCOUNT), refreshed.publicKey);
      assert.ok(sig.publicKey);
      await stop(b.enclave, b.parent);
    } finally {
      s3.destroy();
    }
  });
});

/** An address of this host outside the namespace (its first global IPv4), or 10.255.255.1. */
function hostAddress(): string {
  const r = run("ip", ["-4", "-o", "addr", "show", "scope", "global"]);
  return /inet (\d+\.\d+\.\d+\.\d+)/.exec(r.out)?.[1] ?? "10.255.255.1";
}
