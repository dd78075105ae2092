/**
 * A throw-away certificate authority for TLS tests, made with the `openssl` tool: a CA, and a
 * server certificate for `localhost` and `127.0.0.1` signed by it (EC P-256, two days). Clients
 * trust the CA file the usual way (`curl --cacert`, Deno `DENO_CERT`, Node `NODE_EXTRA_CA_CERTS`).
 * Runtime-neutral (node:fs, node:child_process).
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { makeTestCa } from "./tls_ca.ts";
 * const dir = mkdtempSync(join(tmpdir(), "ca-"));
 * const pki = makeTestCa(dir);
 * // server: pki.certFile / pki.keyFile; client: pki.caFile
 * console.assert(pki.cert.startsWith("-----BEGIN CERTIFICATE-----"));
 * rmSync(dir, { recursive: true });
 * ```
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The files (and PEM texts) of a test CA and its server certificate. */
export interface TestCa {
  /** The CA certificate (PEM file), for clients. */
  readonly caFile: string;
  /** The server's certificate (PEM file). */
  readonly certFile: string;
  /** The server's private key (PEM file). */
  readonly keyFile: string;
  /** The server's certificate, PEM text. */
  readonly cert: string;
  /** The server's private key, PEM text. */
  readonly key: string;
}

/**
 * Makes a CA and a server certificate for `localhost` / `127.0.0.1` in `dir`.
 *
 * @param dir an existing directory for the files
 * @returns the files and the server's PEM texts
 * @throws {Error} when openssl fails (naming the step and its output)
 */
export function makeTestCa(dir: string): TestCa {
  const run = (args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8", timeout: 30_000 });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const days = ["-days", "2"];
  run([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    ...days,
    "-subj",
    "/CN=wallet-mpc test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  run(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  const sign = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", ...days];
  run([
    "x509",
    "-req",
    "-in",
    "server.csr",
    ...sign,
    "-out",
    "server.pem",
    "-extfile",
    "server.ext",
  ]);
  const certFile = join(dir, "server.pem");
  const keyFile = join(dir, "server.key");
  return {
    caFile: join(dir, "ca.pem"),
    certFile,
    keyFile,
    cert: readFileSync(certFile, "utf8"),
    key: readFileSync(keyFile, "utf8"),
  };
}
