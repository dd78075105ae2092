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
 *   h2c) and the gateway egress; openssl verifies the signature; no log holds a secret; with no
 *   issuer secret provisioned the service opens no rooms, and the boot says so once;
 * - with the gateway's issuer secret (its KMS ciphertext sent by the parent on 7104) the
 *   enclave's service opens the rooms: OpenRoom answers a room and a token the gateway takes,
 *   and a sign goes through a gateway with access on and no anonymous rooms, reached over TLS
 *   (the test CA) through the parent, whose relayed bytes hold neither the secret nor a token;
 * - an issuer secret is refused with the boot's failure line when the gateway URL is http
 *   (before any KMS call), when it is too short, when the gateway refuses it, and when KMS's
 *   answer for it carries a Plaintext;
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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CreateKeyCommand, EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { encodeAccountRecords, fromEntry } from "../../core/account_records.ts";
import { toHex } from "../../core/bytes.ts";
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
import { makeTestCa, type TestCa } from "../../testing/tls_ca.ts";
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
/** The enclave's gateway URL with room tokens: TLS to the gateway through the forwarder. */
const TLS_GATEWAY_URL = "https://localhost:8443";

const randomHex = (bytes: number) => toHex(crypto.getRandomValues(new Uint8Array(bytes)));

/** What a relay saw of one connection: the first bytes each way and all of it. */
interface Relayed {
  readonly connections: { first: number[] }[];
  readonly bytes: Uint8Array[];
}

/** `conn`, with every byte written to it or read from it recorded in `seen`. */
function recording(conn: Deno.Conn, seen: Relayed): Deno.Conn {
  const c = { first: [] as number[] };
  seen.connections.push(c);
  const note = (b: Uint8Array) => {
    if (b.length > 0 && c.first.length < 2) c.first.push(b[0]);
    seen.bytes.push(b.slice());
  };
  return new Proxy(conn, {
    get(target, key) {
      if (key === "write") {
        return (b: Uint8Array) => {
          note(b);
          return target.write(b);
        };
      }
      if (key === "read") {
        return async (b: Uint8Array) => {
          const n = await target.read(b);
          if (n) note(b.subarray(0, n));
          return n;
        };
      }
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

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
  let tls: TestCa;
  // Room tokens: a gateway with access on and no anonymous rooms, its issuer secret, and the
  // KMS ciphertexts the parent sends (the secret, one too short, one the gateway refuses).
  let roomGateway: GatewayProcess;
  let issuerSecret: string;
  let issuerFiles: { good: string; short: string; wrong: string };
  let tlsServiceConfig: string;
  /** The parent's egress port to the room gateway (a relay that records, then TLS). */
  let relayPort: number;
  const relayed: Relayed = { connections: [], bytes: [] };
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
    tls = makeTestCa(dir);
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
    issuerSecret = randomHex(32);
    const sealTo = async (name: string, plain: string) => {
      const blob = (await kmsAdmin.send(
        new EncryptCommand({ KeyId: keyArn, Plaintext: new TextEncoder().encode(plain) }),
      )).CiphertextBlob!;
      writeFileSync(join(dir, name), blob);
      return join(dir, name);
    };
    const wrongSecret = randomHex(32);
    issuerFiles = {
      good: await sealTo("issuer-secret.kms", `${issuerSecret}\n`), // as `echo` writes it
      short: await sealTo("issuer-secret-short.kms", "an-issuer-secret-too-short"),
      wrong: await sealTo("issuer-secret-wrong.kms", wrongSecret),
    };
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
    secrets = [...service.values()].flatMap(secretsOf).concat(
      persistent.identity,
      imdsSecret,
      issuerSecret,
      wrongSecret,
      "an-issuer-secret-too-short",
    );
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
    const tokenSecret = randomHex(32);
    secrets.push(tokenSecret);
    roomGateway = await startGateway("deno", ["--set", "access.allow_anonymous=false"], {
      WALLET_MPC_GATEWAY_ACCESS_ENABLED: "true",
      WALLET_MPC_GATEWAY_TOKEN_SECRET: tokenSecret,
      WALLET_MPC_GATEWAY_ISSUER_SECRET: issuerSecret,
    });
    // TLS in front of it (a load balancer's part; the certificate of the test CA), and before
    // that a relay recording what the parent's egress carries.
    const front = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key });
    forwarders.push(
      forward(front, () => Deno.connect({ hostname: "127.0.0.1", port: roomGateway.port })),
    );
    const relay = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    relayPort = relay.addr.port;
    forwarders.push(
      forward(
        relay,
        async () =>
          recording(await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port }), relayed),
      ),
    );
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
    tlsServiceConfig = join(dir, "sign-service-tls.yaml");
    writeFileSync(
      tlsServiceConfig,
      readFileSync(serviceConfig, "utf8").replace(
        "gateway: { url: http://127.0.0.1:8080 }",
        `gateway: { url: ${TLS_GATEWAY_URL} }`,
      ),
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
    await roomGateway?.stop().catch(() => {});
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

  /** What a boot differs in: the service's configuration, the issuer secret, the egress. */
  interface BootOptions {
    /** The service configuration file (default the http one, no room tokens). */
    readonly config?: string;
    /** The KMS ciphertext of the issuer secret the parent sends (default none). */
    readonly issuerFile?: string;
    /** The port the parent's egress connects to (default the gateway without access). */
    readonly egressTo?: number;
  }

  /**
   * Starts the enclave in the namespace and the parent outside, after stopping what an earlier
   * test left running (a failed assertion skips its stop; the namespace's ports must be free).
   */
  async function boot(o: BootOptions = {}) {
    for (const p of running.splice(0)) await p.stop("SIGKILL");
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
      o.config ?? serviceConfig,
      "--state-dir",
      join(dir, `state-${boots}`),
    ], { NODE_EXTRA_CA_CERTS: caFile, DENO_CERT: caFile });
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
      `8080=127.0.0.1:${o.egressTo ?? gateway.port}`,
      ...(o.issuerFile ? ["--issuer-secret-file", o.issuerFile] : []),
    ]);
    running.push(enclave, parent);
    return { enclave, parent, t0 };
  }

  async function bootReady(o: BootOptions = {}) {
    const b = await boot(o);
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

  function client(grpcPort: number, gatewayUrl = gateway.url) {
    return newMpcClient({
      rpcTransport: createGrpcTransport({
        baseUrl: `http://127.0.0.1:${grpcPort}`,
      }),
      gatewayUrl,
      token,
      keyStore: clientKeys,
      generatePrimes: fixturePrimes(6),
    });
  }

  async function signAndVerify(grpcPort: number, gatewayUrl = gateway.url) {
    const digest = randomDigest();
    const sig = await client(grpcPort, gatewayUrl).signTx(digest, ACCOUNT, { path: "m/0/7" });
    assert.equal(opensslVerify(sig.publicKey, digest, sig.der), true, "openssl verifies");
    return sig;
  }

  function assertNoSecrets(...ps: LoggedProcess[]) {
    for (const p of ps) {
      const text = p.output();
      for (const s of secrets) assert.ok(!text.includes(s), "a secret appears in a log");
    }
  }

  /** The enclave's `enclave boot failed` line, after it exited 1 without serving. */
  async function bootFailure(b: Awaited<ReturnType<typeof boot>>) {
    const ready = await b.enclave.waitFor(
      "the boot to end",
      (l) => l.msg === "enclave ready",
      BOOT_MS,
    )
      .then(() => true, () => false); // fails as soon as the enclave exits
    assert.equal(ready, false, `the enclave booted: ${b.enclave.output()}`);
    assert.equal(await b.enclave.exited, 1, b.enclave.output());
    const failed = b.enclave.lines.find((l) => l.msg === "enclave boot failed");
    assert.ok(failed, b.enclave.output());
    assert.ok(!b.enclave.lines.some((l) => l.msg === "listening"), "the service never listened");
    await stop(b.parent);
    assertNoSecrets(b.enclave, b.parent);
    return failed;
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
    // No issuer secret sent: the clients pick the rooms, and the boot says so once.
    const said = b.enclave.lines.filter((l) => l.msg === "no issuer secret provisioned");
    assert.equal(said.length, 1);
    assert.equal(b.enclave.lines.find((l) => l.msg === "session rooms")?.room_tokens, false);
    assert.ok(!b.enclave.lines.some((l) => l.msg === "provisioning message" && l.port === 7104));
    await stop(b.enclave, b.parent);
    assertNoSecrets(b.enclave, b.parent);
  });

  test("with the issuer secret the enclave's service opens the rooms: a sign through a gateway without anonymous rooms, TLS through the parent", async () => {
    const room = (id: string) => `${roomGateway.url}/rooms/${id}/issue_unique_idx`;
    const anonymous = await fetch(room("ab".repeat(16)), { method: "POST" });
    await anonymous.body?.cancel();
    assert.equal(anonymous.status, 401, "the gateway refuses a request without a token");
    const sealed = kms.sealed;
    const b = await bootReady({
      config: tlsServiceConfig,
      issuerFile: issuerFiles.good,
      egressTo: relayPort,
    });
    assert.equal(kms.sealed - sealed, 2, "two attested decrypts: the age key, the issuer secret");
    assert.ok(b.enclave.lines.some((l) => l.msg === "provisioning message" && l.port === 7104));
    assert.ok(!b.enclave.lines.some((l) => l.msg === "no issuer secret provisioned"));
    const provisioned = b.enclave.lines.find((l) => l.msg === "issuer secret provisioned");
    assert.equal(provisioned?.gateway_check, "accepted", "the gateway took the secret at boot");
    assert.equal(b.enclave.lines.find((l) => l.msg === "session rooms")?.room_tokens, true);
    assert.equal(
      b.parent.lines.find((l) => l.msg === "provisioning the enclave")?.ports,
      "7100,7101,7104,7102",
    );

    // OpenRoom: a room and a token that the gateway takes for that room.
    const c = client(b.grpc, roomGateway.url);
    const opened = await c.service.openRoom(
      { accountId: ACCOUNT, operation: "sign" },
      { headers: { authorization: `Bearer ${token}` } },
    );
    assert.match(opened.roomId, /^[0-9a-f]{32}$/);
    assert.ok(Number(opened.expiresAt) > Date.now() / 1000, "the token has not expired");
    const withToken = await fetch(room(opened.roomId), {
      method: "POST",
      headers: { authorization: `Bearer ${opened.gatewayToken}` },
    });
    await withToken.body?.cancel();
    assert.equal(withToken.status, 200, "the room token opens its room");

    // The client library's sign: OpenRoom, then the session in that room with its token.
    await signAndVerify(b.grpc, roomGateway.url);
    await b.enclave.waitFor(
      "the sign's audit line",
      (l) => l.action === "sign" && l.outcome === "ok",
    );
    const opens = b.enclave.lines.filter((l) => l.action === "open_room" && l.outcome === "ok");
    assert.ok(opens.length >= 2, "the sign ran in a room the service opened");
    await stop(b.enclave, b.parent);
    assertNoSecrets(b.enclave, b.parent);

    // The parent relayed the enclave's gateway traffic as TLS: no secret, no token in clear.
    assert.ok(relayed.connections.length > 0, "the gateway traffic went through the parent");
    for (const conn of relayed.connections) {
      assert.equal(conn.first[0], 0x16, "each connection opens with a TLS handshake record");
    }
    const seen = new TextDecoder("latin1").decode(
      Uint8Array.from(relayed.bytes.flatMap((b) => [...b])),
    );
    assert.ok(!seen.includes(issuerSecret), "the issuer secret crossed the parent in clear");
    assert.ok(!seen.includes(opened.gatewayToken), "a room token crossed the parent in clear");
    assert.ok(!/authorization|bearer/i.test(seen), "an HTTP header crossed the parent in clear");
  });

  test("an issuer secret with an http gateway URL is refused before any KMS call", async () => {
    const sealed = kms.sealed;
    const failed = await bootFailure(await boot({ issuerFile: issuerFiles.good }));
    assert.equal(failed.step, "issuer-secret");
    assert.equal(failed.code, "cleartext-gateway");
    assert.match(String(failed.message), /parent .* would read the secret/);
    assert.equal(kms.sealed, sealed, "no KMS decrypt");
  });

  test("a short issuer secret, and one the gateway refuses, end the boot with a typed line", async () => {
    const viaTls = { config: tlsServiceConfig, egressTo: relayPort };
    let failed = await bootFailure(await boot({ ...viaTls, issuerFile: issuerFiles.short }));
    assert.equal(failed.step, "issuer-secret");
    assert.equal(failed.code, "malformed");
    failed = await bootFailure(await boot({ ...viaTls, issuerFile: issuerFiles.wrong }));
    assert.equal(failed.step, "issuer-secret");
    assert.equal(failed.code, "rejected");
    assert.match(String(failed.message), /gateway refused the issuer secret \(403/);
  });

  test("a Plaintext answer for the issuer secret (a host answering for KMS) is refused", async () => {
    kms.plaintextFor = new Uint8Array(readFileSync(issuerFiles.good));
    try {
      const failed = await bootFailure(
        await boot({ config: tlsServiceConfig, issuerFile: issuerFiles.good, egressTo: relayPort }),
      );
      assert.equal(failed.step, "issuer-secret-decrypt");
      assert.equal(failed.code, "plaintext-answer");
    } finally {
      kms.plaintextFor = null;
    }
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
      const b = await boot();
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
      const b = await boot();
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
