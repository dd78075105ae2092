import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCpio } from "./cpio.ts";
import { measureEif, readEif, SECTION } from "./eif.ts";
import { buildEnclaveImage, defaultDenoBinary, placeholderBlobs } from "./build.ts";
import { prepareEnclaveConfig } from "./config.ts";
import { testConfigInput } from "./_test_config.ts";
import {
  bootstrapRamdisk,
  collectRootfs,
  customerRamdisk,
  enclaveCommand,
  libcryptoLibraries,
  materializeRootfs,
  parseLdd,
  ROOTFS_BUNDLE,
  ROOTFS_DENO,
} from "./rootfs.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const SELFTEST = new URL("./selftest.ts", import.meta.url).pathname;
const BOOT = new URL("../boot.ts", import.meta.url).pathname;

test("parseLdd keeps the library paths and the loader, skips the vDSO, refuses a missing library", () => {
  const out = [
    "\tlinux-vdso.so.1 (0x00007ffd2b1f4000)",
    "\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f2c0a8c1000)",
    "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2c04800000)",
    "\t/lib64/ld-linux-x86-64.so.2 (0x00007f2c0a8d9000)",
    "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2c04800000)",
  ].join("\n");
  assert.deepEqual(parseLdd(out), [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libdl.so.2",
    "/lib64/ld-linux-x86-64.so.2",
  ]);
  assert.throws(() => parseLdd("\tlibfoo.so.1 => not found"), SyntaxError);
  assert.throws(() => parseLdd("something else"), SyntaxError);
  assert.deepEqual(parseLdd("\tstatically linked"), []);
});

test("the root filesystem and the two ramdisks have the layout AWS's init expects", () => {
  const dir = mkdtempSync(join(tmpdir(), "rootfs-unit-"));
  try {
    const deno = join(dir, "deno");
    const lib = join(dir, "libc.so.6");
    const ca = join(dir, "ca.pem");
    writeFileSync(deno, "fake deno");
    writeFileSync(lib, "fake libc");
    writeFileSync(ca, "-----BEGIN CERTIFICATE-----\n");
    const tree = collectRootfs({
      denoBinary: deno,
      bundle: text("console.log(1)"),
      libraries: [lib],
      caBundle: ca,
      loopbackHosts: ["kms.eu-west-1.amazonaws.com"],
    });
    const byPath = new Map(tree.map((e) => [e.path, e]));
    const file = (p: string) => {
      const e = byPath.get(p);
      assert.ok(e?.type === "file", p);
      return e;
    };
    assert.equal(file(ROOTFS_DENO).mode, 0o755);
    assert.equal(decode(file(ROOTFS_BUNDLE).data), "console.log(1)");
    assert.equal(decode(file(lib.slice(1)).data), "fake libc");
    assert.match(decode(file("etc/hosts").data), /^127\.0\.0\.1\tkms\.eu-west-1\.amazonaws\.com$/m);
    assert.equal(decode(file("etc/nsswitch.conf").data), "hosts: files dns\n");
    assert.equal(file("etc/ssl/certs/ca-certificates.crt").mode, 0o644);
    for (const d of ["dev", "proc", "run", "sys", "tmp", "var"]) {
      assert.equal(byPath.get(d)?.type, "dir", d);
    }
    const command = enclaveCommand(["--allow-all"]);
    assert.deepEqual(command.cmd, [
      "/bin/deno",
      "run",
      "--no-remote",
      "--no-prompt",
      "--allow-all",
      "/app/boot.js",
    ]);
    const customer = readCpio(customerRamdisk(tree, command));
    const paths = customer.map((e) => e.path);
    assert.ok(paths.includes("rootfs/bin/deno") && paths.includes("rootfs/app/boot.js"));
    assert.ok(
      paths.every((p) => p === "cmd" || p === "env" || p === "rootfs" || p.startsWith("rootfs/")),
    );
    const cmd = customer.find((e) => e.path === "cmd");
    assert.ok(cmd?.type === "file");
    assert.equal(decode(cmd.data), command.cmd.join("\n") + "\n");
    assert.throws(() => customerRamdisk(tree, { cmd: ["a\nb"], env: [] }), RangeError);
    assert.deepEqual(readCpio(bootstrapRamdisk(text("init"), text("nsm"))).map((e) => e.path), [
      "dev",
      "init",
      "nsm.ko",
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

if (isDeno && !isRoot) {
  console.warn("SKIP: the chroot smoke test needs root (unshare --net, chroot): it will NOT run");
}

/** The tree of the first build, for the smoke test that follows. */
const built = { dir: "" };
after(() => {
  if (!built.dir) return;
  spawnSync("umount", [join(built.dir, "rootfs/proc")]);
  rmSync(built.dir, { recursive: true, force: true });
});

test(
  "two builds give the same EIF and PCRs (the image read back measures the same)",
  { skip: isDeno ? false : "the image build runs under Deno only (Node: skipped)" },
  () => {
    built.dir = mkdtempSync(join(tmpdir(), "rootfs-smoke-"));
    const opts = {
      entry: SELFTEST,
      blobs: placeholderBlobs(),
      denoBinary: defaultDenoBinary(),
      buildTime: "2026-01-01T00:00:00.000Z",
      commit: "test",
    };
    const a = buildEnclaveImage({ ...opts, rootfsDir: join(built.dir, "rootfs") });
    const b = buildEnclaveImage(opts);
    assert.equal(a.eif.length, b.eif.length);
    assert.ok(a.eif.every((x, i) => x === b.eif[i]), "the two builds differ");
    assert.deepEqual(a.pcrs, b.pcrs);
    const image = readEif(a.eif);
    assert.deepEqual(measureEif(image), a.pcrs);
    assert.deepEqual(image.sections.map((s) => s.type), [
      SECTION.kernel,
      SECTION.cmdline,
      SECTION.metadata,
      SECTION.ramdisk,
      SECTION.ramdisk,
    ]);
    assert.match(decode(image.sections[0].data), /PLACEHOLDER KERNEL: NOT BOOTABLE/);
  },
);

test(
  "the built tree runs deno's self-test under unshare --net + chroot (FFI, crypto, CA bundle, no network)",
  {
    skip: !isDeno
      ? "Deno only (Node: skipped)"
      : !isRoot
      ? "SKIPPED LOUDLY: the chroot smoke test needs root (unshare --net, chroot): it did NOT run"
      : false,
  },
  () => {
    const root = join(built.dir, "rootfs");
    assert.ok(built.dir, "the build test above must run first");
    // As AWS's init does: /proc mounted, no network, chroot into the tree, the cmd line run.
    const { cmd, env } = enclaveCommand(["--allow-all"]);
    const r = inChroot(root, cmd, envOf(env));
    assert.equal(r.status, 0, `self-test failed: ${r.stderr}`);
    const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.equal(
      result.deno,
      (globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno,
    );
    assert.equal(result.ffi, "ok");
    assert.equal(result.crypto, "ok");
    assert.ok(result.caCertificates > 10);
    assert.equal(result.hosts, true);
    assert.match(result.network, /^unreachable/);
    // The tree has nothing but what the builder put there: no shell, no package manager.
    const ls = spawnSync("find", [root, "-type", "f"], { encoding: "utf8" });
    const files = ls.stdout.trim().split("\n").map((p) => p.slice(root.length));
    assert.ok(!files.some((f) => /\/(sh|bash|busybox|apt)$/.test(f)), files.join(" "));
  },
);

test(
  "the boot program of a configured image, under unshare --net + chroot with only its /env, reads the baked settings and service configuration and waits for provisioning",
  {
    skip: !isDeno
      ? "Deno only (Node: skipped)"
      : !isRoot
      ? "SKIPPED LOUDLY: the chroot smoke test needs root (unshare --net, chroot): it did NOT run"
      : false,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "rootfs-boot-"));
    const root = join(dir, "rootfs");
    try {
      const r = buildEnclaveImage({
        entry: BOOT,
        blobs: placeholderBlobs(),
        denoBinary: defaultDenoBinary(),
        buildTime: "2026-01-01T00:00:00.000Z",
        commit: "test",
        config: await prepareEnclaveConfig(testConfigInput()),
      });
      // The tree, /cmd and /env as AWS's init gets them: from the EIF's customer ramdisk.
      const customer = readCpio(readEif(r.eif).sections.at(-1)!.data);
      const item = (p: string) => {
        const e = customer.find((x) => x.path === p);
        assert.ok(e?.type === "file", p);
        return decode(e.data).split("\n").filter((l) => l !== "");
      };
      materializeRootfs(
        customer.filter((e) => e.path.startsWith("rootfs/"))
          .map((e) => ({ ...e, path: e.path.slice("rootfs/".length) })),
        root,
      );
      const env = envOf(item("env"));
      assert.equal(env.WALLET_MPC_ENCLAVE_REGION, "eu-west-1");
      // The only setting not from the image: end the wait for a parent that never comes.
      const run = inChroot(root, [...item("cmd"), "--provision-timeout-ms", "1500"], env);
      spawnSync("umount", [join(root, "proc")]);
      const lines = (run.stdout + run.stderr).split("\n").filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l));
      const waiting = lines.find((l) => l.msg === "waiting for provisioning");
      assert.ok(waiting, `the boot program did not reach provisioning: ${run.stdout}${run.stderr}`);
      assert.equal(waiting.channel, "vsock");
      const failed = lines.find((l) => l.msg === "enclave boot failed");
      assert.equal(failed?.step, "provisioning", JSON.stringify(failed));
      assert.equal(run.status, 1);
    } finally {
      spawnSync("umount", [join(root, "proc")]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

/** `NAME=VALUE` lines (an /env file) as an environment. */
function envOf(lines: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/**
 * Runs a command as AWS's init does: /proc mounted, no network, chroot into the tree, only the
 * given environment.
 */
function inChroot(root: string, cmd: readonly string[], env: Record<string, string>) {
  return spawnSync(
    which("unshare"),
    [
      "--net",
      "--pid",
      "--mount",
      "--fork",
      `--mount-proc=${join(root, "proc")}`,
      which("chroot"),
      root,
      ...cmd,
    ],
    { env, encoding: "utf8", timeout: 60_000 },
  );
}

/** Absolute path of a host tool (the child's PATH is the enclave's, /bin only). */
function which(tool: string): string {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  const found = dirs.map((d) => join(d, tool)).find((p) =>
    spawnSync("test", ["-x", p]).status === 0
  );
  if (!found) throw new Error(`${tool} not found`);
  return found;
}

test("materializeRootfs writes modes exactly (no umask)", () => {
  const dir = mkdtempSync(join(tmpdir(), "rootfs-modes-"));
  try {
    materializeRootfs([
      { type: "dir", path: "tmp", mode: 0o1777 },
      { type: "file", path: "bin/x", mode: 0o755, data: text("x") },
    ], dir);
    const st = spawnSync("stat", ["-c", "%a %n", join(dir, "tmp"), join(dir, "bin/x")], {
      encoding: "utf8",
    });
    assert.deepEqual(st.stdout.trim().split("\n").map((l) => l.split(" ")[0]), ["1777", "755"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the root filesystem ships the system's libcrypto (the service's constant-time backend loads it through FFI)", () => {
  const libs = libcryptoLibraries();
  if (libs.length === 0) return; // a host without libcrypto.so.3: the build warns
  assert.match(libs[0], /libcrypto\.so\.3$/);
  const paths = collectRootfs({
    denoBinary: defaultDenoBinary(),
    bundle: new Uint8Array(0),
  }).map((e) => "/" + e.path);
  assert.ok(paths.includes(libs[0]), "libcrypto is in the tree");
});
