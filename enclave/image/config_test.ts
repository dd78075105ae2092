import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCpio } from "./cpio.ts";
import { readEif, SECTION } from "./eif.ts";
import { buildEnclaveImage, configFromArgs, defaultDenoBinary, placeholderBlobs } from "./build.ts";
import {
  EnclaveConfigError,
  GATEWAY_CA_PATH,
  parseSettingsFile,
  prepareEnclaveConfig,
  variableName,
} from "./config.ts";
import { callersYaml, serviceYaml, TEST_RECIPIENT, testConfigInput } from "./_test_config.ts";
import { makeTestCa } from "../../testing/tls_ca.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const P = "WALLET_MPC_ENCLAVE_";

async function refused(over: Parameters<typeof testConfigInput>[0], message: RegExp) {
  await assert.rejects(prepareEnclaveConfig(testConfigInput(over)), (e: unknown) => {
    assert.ok(e instanceof EnclaveConfigError, String(e));
    assert.match(e.message, message);
    return true;
  });
}

test("the settings file: NAME=VALUE lines, flag names accepted, comments, duplicates and quotes refused", () => {
  assert.deepEqual(
    parseSettingsFile(`# boot\n${P}REGION=eu-west-1\n\nkms-key-id = k\n`),
    { [`${P}REGION`]: "eu-west-1", [`${P}KMS_KEY_ID`]: "k" },
  );
  assert.equal(variableName("age-recipient"), `${P}AGE_RECIPIENT`);
  assert.throws(() => parseSettingsFile(`${P}REGION=a\nregion=b\n`), /given twice/);
  assert.throws(() => parseSettingsFile(`${P}REGION="eu-west-1"\n`), /quotes are not removed/);
  assert.throws(() => parseSettingsFile("just words\n"), /expected NAME=VALUE/);
});

test("a valid configuration: sorted /env lines, the two files under /app/config, the KMS host on loopback", async () => {
  const c = await prepareEnclaveConfig(testConfigInput());
  assert.deepEqual(c.env, [
    `${P}AGE_RECIPIENT=${TEST_RECIPIENT}`,
    `${P}KMS_KEY_ID=arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    `${P}REGION=eu-west-1`,
  ]);
  assert.deepEqual(c.files.map((f) => f.path), [
    "app/config/sign-service.yaml",
    "app/config/callers.yaml",
  ]);
  assert.deepEqual(c.loopbackHosts, ["kms.eu-west-1.amazonaws.com"]);
  assert.equal(c.summary.callers, 1);
});

test("an https gateway: its host name is mapped to loopback, the forwarder carries TLS end to end", async () => {
  const c = await prepareEnclaveConfig(
    testConfigInput({ serviceConfig: text(serviceYaml("https://gateway.example:8443")) }),
  );
  assert.deepEqual(c.loopbackHosts, ["kms.eu-west-1.amazonaws.com", "gateway.example"]);
  assert.equal(c.summary.gatewayUrl, "https://gateway.example:8443");
});

test("a build that would not boot is refused with a clear message", async () => {
  const settings = testConfigInput().settings;
  const without = (name: string) =>
    Object.fromEntries(Object.entries(settings).filter(([k]) => k !== P + name));
  await refused({ settings: without("KMS_KEY_ID") }, /KMS_KEY_ID is not set.*--kms-key-id/);
  await refused({ settings: without("REGION") }, /REGION is not set.*--region/);
  await refused(
    { settings: without("AGE_RECIPIENT") },
    /AGE_RECIPIENT is not set.*--age-recipient/,
  );
  await refused({ settings: { ...settings, [`${P}AGE_RECIPIENT`]: "age1nope" } }, /age-recipient/);
  await refused({ settings: { ...settings, [`${P}REGION`]: "Europe" } }, /region/);
  await refused({ settings: { ...settings, [`${P}NOPE`]: "1" } }, /unknown boot setting/);
  await refused({ settings: { ...settings, [`${P}CHANNEL`]: "unix:/tmp/x" } }, /vsock.*test mode/);
  await refused({ settings: { ...settings, [`${P}NSM`]: "channel:9" } }, /test mode/);
  await refused({ settings: { ...settings, [`${P}EGRESS_PORT`]: "x" } }, /egress-port/);
  await refused(
    { settings: { ...settings, [`${P}SERVICE_CONFIG`]: "/etc/s.yaml" } },
    /under \/app\/config/,
  );
  // The gateway must be the boot program's egress forwarder.
  for (
    const url of [
      "http://gateway.internal:8080",
      "https://127.0.0.1:8080",
      "https://localhost:8443",
      "http://10.0.0.1:8080",
      "https://10.0.0.1:8443",
      "https://[::1]:8443",
    ]
  ) {
    await refused(
      { serviceConfig: text(serviceYaml(url)) },
      /gateway\.url must be http:\/\/127\.0\.0\.1:<port> \(the boot program's egress forwarder/,
    );
  }
  await refused(
    { serviceConfig: text(serviceYaml("http://127.0.0.1:443")) },
    /taken by the KMS forwarder/,
  );
  // https takes the KMS forwarder's port 443 unless the URL names another one.
  await refused(
    { serviceConfig: text(serviceYaml("https://gateway.example")) },
    /taken by the KMS forwarder/,
  );
  await refused(
    { serviceConfig: text(serviceYaml(undefined, "gateway2: 1\n")) },
    /service configuration/,
  );
  await refused(
    { serviceConfig: text(serviceYaml().replace("host: 127.0.0.1", "host: 0.0.0.0")) },
    /server\.host must be 127\.0\.0\.1/,
  );
  await refused(
    {
      serviceConfig: text(
        serviceYaml().replace(
          "url: http://127.0.0.1:8080",
          "url: http://127.0.0.1:8080\n  token: s3cr3t",
        ),
      ),
    },
    /gateway\.token must be empty/,
  );
  await refused(
    { serviceConfig: text(serviceYaml(undefined, "key_store:\n  allow_plaintext: true\n")) },
    /plaintext/,
  );
  await refused(
    { serviceConfig: text(serviceYaml().replace("/app/config/callers.yaml", "callers.yaml")) },
    /auth\.tokens_file must be a file under \/app\/config\//,
  );
  await refused({ callers: text("callers: []\n") }, /no callers/);
  await refused({ callers: text("callers: [{ id: x }]\n") }, /callers file/);
});

test("enclave:build's command line: every part required unless --unconfigured; flags override the file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "enclave-args-"));
  try {
    const f = (name: string, s: string) => (writeFileSync(join(dir, name), s), join(dir, name));
    const settings = f("s.env", `${P}REGION=eu-west-1\nkms-key-id=alias/wallet\n`);
    const svc = f("svc.yaml", serviceYaml());
    const callers = f("callers.yaml", callersYaml());
    await assert.rejects(
      configFromArgs({ settings: [settings], callers: [callers] }),
      /--service-config FILE is required/,
    );
    await assert.rejects(
      configFromArgs({ settings: [settings], "service-config": [svc], callers: [callers] }),
      /AGE_RECIPIENT is not set/,
    );
    const c = await configFromArgs({
      settings: [settings],
      "age-recipient": [TEST_RECIPIENT],
      region: ["us-east-1"],
      "service-config": [svc],
      callers: [callers],
    });
    assert.ok(
      c?.env.includes(`${P}REGION=us-east-1`) && c.env.includes(`${P}KMS_KEY_ID=alias/wallet`),
    );
    assert.equal(await configFromArgs({ unconfigured: ["true"] }), undefined);
    await assert.rejects(
      configFromArgs({ unconfigured: ["true"], callers: [callers] }),
      /--unconfigured with --callers/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a private gateway CA: baked beside the configuration and named by DENO_CERT; refused when it could not serve", async () => {
  const dir = mkdtempSync(join(tmpdir(), "enclave-ca-"));
  try {
    const pki = makeTestCa(dir);
    const ca = readFileSync(pki.caFile);
    const https = text(serviceYaml("https://gateway.example:8443"));
    const c = await prepareEnclaveConfig(
      testConfigInput({ serviceConfig: https, gatewayCa: new Uint8Array(ca) }),
    );
    assert.equal(c.env.at(-1), `DENO_CERT=${GATEWAY_CA_PATH}`);
    const baked = c.files.find((f) => f.path === GATEWAY_CA_PATH.slice(1));
    assert.ok(baked?.type === "file" && decode(baked.data) === decode(ca));
    assert.deepEqual(c.summary.gatewayCa, ["CN=wallet-mpc test CA"]);
    // Without one: Deno's built-in roots only.
    const none = await prepareEnclaveConfig(testConfigInput({ serviceConfig: https }));
    assert.ok(!none.env.some((l) => l.startsWith("DENO_CERT=")));
    assert.deepEqual(none.summary.gatewayCa, []);

    const withCa = (
      gatewayCa: string,
      message: RegExp,
      over: Parameters<typeof testConfigInput>[0] = {},
    ) => refused({ serviceConfig: https, gatewayCa: text(gatewayCa), ...over }, message);
    await refused({ gatewayCa: new Uint8Array(ca) }, /gateway CA: only for an https gateway/);
    await withCa(pki.cert, /certificate 1 \(CN=localhost\) is not a CA certificate/);
    await withCa(decode(ca) + pki.key, /PEM CERTIFICATE blocks only/);
    await withCa("", /PEM CERTIFICATE blocks only/);
    const body = decode(ca).split("\n");
    body[2] = "A".repeat(body[2].length); // the DER's structure broken
    await withCa(body.join("\n"), /certificate 1 does not parse/);
    await withCa(decode(ca), /is not valid now/, { now: new Date(Date.now() + 5 * 86_400_000) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Builds with a tiny entry (the bundle is not what these tests are about).
const work = isDeno ? mkdtempSync(join(tmpdir(), "enclave-config-build-")) : "";
after(() => work && rmSync(work, { recursive: true, force: true }));
const skip = isDeno ? false : "the image build runs under Deno only (Node: skipped)";

async function build(over: Parameters<typeof testConfigInput>[0] = {}) {
  const entry = join(work, "entry.ts");
  writeFileSync(entry, "console.log('entry');\n");
  return buildEnclaveImage({
    entry,
    blobs: placeholderBlobs(),
    denoBinary: defaultDenoBinary(),
    buildTime: "2026-01-01T00:00:00.000Z",
    commit: "test",
    config: await prepareEnclaveConfig(testConfigInput(over)),
  });
}

test("the customer ramdisk holds the settings in /env and the files under rootfs/app/config", {
  skip,
}, async () => {
  const r = await build();
  const sections = readEif(r.eif).sections.filter((s) => s.type === SECTION.ramdisk);
  const customer = readCpio(sections[1].data);
  const file = (p: string) => {
    const e = customer.find((x) => x.path === p);
    assert.ok(e?.type === "file", p);
    return decode(e.data);
  };
  const env = file("env").split("\n");
  assert.ok(env.includes(`${P}AGE_RECIPIENT=${TEST_RECIPIENT}`), env.join(" "));
  assert.ok(
    env.includes(`${P}REGION=eu-west-1`) && env.some((l) => l.startsWith(`${P}KMS_KEY_ID=arn:`)),
  );
  assert.ok(env.includes("PATH=/bin"));
  assert.equal(file("rootfs/app/config/sign-service.yaml"), serviceYaml());
  assert.equal(file("rootfs/app/config/callers.yaml"), callersYaml());
  assert.match(file("rootfs/etc/hosts"), /^127\.0\.0\.1\tkms\.eu-west-1\.amazonaws\.com$/m);
});

test("a baked gateway CA is in the customer ramdisk and measured", { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "enclave-ca-build-"));
  try {
    const ca = new Uint8Array(readFileSync(makeTestCa(dir).caFile));
    const serviceConfig = text(serviceYaml("https://gateway.example:8443"));
    const without = await build({ serviceConfig });
    const r = await build({ serviceConfig, gatewayCa: ca });
    const customer = readCpio(
      readEif(r.eif).sections.filter((x) => x.type === SECTION.ramdisk)[1].data,
    );
    const file = (p: string) => customer.find((x) => x.path === p);
    const env = file("env");
    assert.ok(env?.type === "file" && decode(env.data).includes(`DENO_CERT=${GATEWAY_CA_PATH}\n`));
    const baked = file("rootfs" + GATEWAY_CA_PATH);
    assert.ok(baked?.type === "file" && decode(baked.data) === decode(ca));
    assert.notEqual(r.pcrs.pcr2, without.pcrs.pcr2, "PCR2 measures the CA");
    assert.notEqual(r.pcrs.pcr0, without.pcrs.pcr0, "PCR0 measures the CA");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "the baked settings, service configuration and callers file are measured: PCR0 and PCR2 change, PCR1 does not",
  { skip },
  async () => {
    const base = await build();
    const changed = {
      callers: await build({ callers: text(callersYaml("app", "cd")) }),
      serviceConfig: await build({
        serviceConfig: text(serviceYaml(undefined, "rate_limit:\n  burst: 5\n")),
      }),
      setting: await build({
        settings: { ...testConfigInput().settings, [`${P}KMS_KEY_ID`]: "alias/other" },
      }),
    };
    for (const [what, r] of Object.entries(changed)) {
      assert.notEqual(r.pcrs.pcr2, base.pcrs.pcr2, `${what}: PCR2 unchanged`);
      assert.notEqual(r.pcrs.pcr0, base.pcrs.pcr0, `${what}: PCR0 unchanged`);
      assert.equal(r.pcrs.pcr1, base.pcrs.pcr1, `${what}: PCR1 (kernel, bootstrap) changed`);
    }
  },
);

test("two configured builds are byte-identical, whatever order the settings were given in", {
  skip,
}, async () => {
  const a = await build();
  const reversed = Object.fromEntries(Object.entries(testConfigInput().settings).reverse());
  const b = await build({ settings: reversed });
  assert.deepEqual(a.pcrs, b.pcrs);
  assert.equal(a.eif.length, b.eif.length);
  assert.ok(a.eif.every((x, i) => x === b.eif[i]), "the two builds differ");
});
