/**
 * The parent's AWS credentials from the EC2 instance metadata service, version 2 only (a
 * session token first, `PUT /latest/api/token`, then the instance role's credentials with it),
 * cached until five minutes before they expire. The parent uses them for S3 and hands them to
 * the enclave (port 7100) for its one KMS call; KMS's key policy, not these credentials, is
 * what keeps the age key from the parent (docs/enclave.md).
 *
 * @example
 * ```ts
 * import { S3Client } from "@aws-sdk/client-s3";
 * import { createImdsCredentials } from "./imds.ts";
 * const creds = createImdsCredentials({}); // http://169.254.169.254, asked at the first S3 call
 * const s3 = new S3Client({ region: "eu-west-1", credentials: creds.provider });
 * s3.destroy();
 * ```
 * @module
 */

/** AWS credentials (the SDK's shape). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

/** Options of {@link createImdsCredentials}. */
export interface ImdsOptions {
  /** Base URL (default `http://169.254.169.254`). */
  readonly endpoint?: string;
  /** Injected fetch (default the global one). */
  readonly fetch?: typeof fetch;
  /** Bound of each request (default 5 s). */
  readonly timeoutMs?: number;
  /** Clock (default Date.now). */
  readonly now?: () => number;
}

/** Credentials from IMDSv2, cached. */
export interface ImdsCredentials {
  /** Current credentials (fetched again when within five minutes of their expiry). */
  get(): Promise<AwsCredentials>;
  /** The same, as an SDK credential provider. */
  readonly provider: () => Promise<AwsCredentials>;
}

/** The credential JSON of the metadata service. */
interface ImdsRoleCredentials {
  Code?: string;
  AccessKeyId?: string;
  SecretAccessKey?: string;
  Token?: string;
  Expiration?: string;
}

/**
 * Credentials of the instance role through IMDSv2.
 * @param options endpoint, fetch, timeout, clock.
 * @returns the cached source.
 */
export function createImdsCredentials(options: ImdsOptions = {}): ImdsCredentials {
  const base = (options.endpoint ?? "http://169.254.169.254").replace(/\/$/, "");
  const f = options.fetch ?? globalThis.fetch.bind(globalThis);
  const ms = options.timeoutMs ?? 5_000;
  const now = options.now ?? Date.now;
  let cached: AwsCredentials | undefined;

  async function call(path: string, init: RequestInit, what: string): Promise<string> {
    let res: Response;
    try {
      res = await f(`${base}${path}`, { ...init, signal: AbortSignal.timeout(ms) });
    } catch (e) {
      throw new Error(`IMDS ${what}: unreachable (${(e as Error)?.name})`);
    }
    const text = await res.text();
    if (!res.ok) throw new Error(`IMDS ${what}: HTTP ${res.status}`);
    return text;
  }

  async function fetchOnce(): Promise<AwsCredentials> {
    const token = await call("/latest/api/token", {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "21600" },
    }, "token");
    const headers = { "x-aws-ec2-metadata-token": token };
    const roles = await call("/latest/meta-data/iam/security-credentials/", { headers }, "role");
    const role = roles.split("\n").map((r) => r.trim()).find((r) => r !== "");
    if (!role || !/^[\w+=,.@-]{1,128}$/.test(role)) {
      throw new Error("IMDS role: the instance has no IAM role");
    }
    const text = await call(
      `/latest/meta-data/iam/security-credentials/${role}`,
      { headers },
      "credentials",
    );
    let c: ImdsRoleCredentials;
    try {
      c = JSON.parse(text);
    } catch {
      throw new Error("IMDS credentials: not JSON");
    }
    if (c.Code !== "Success" || !c.AccessKeyId || !c.SecretAccessKey) {
      throw new Error(`IMDS credentials: expected Code Success and keys, got ${String(c.Code)}`);
    }
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      ...(c.Token ? { sessionToken: c.Token } : {}),
      ...(c.Expiration ? { expiration: new Date(c.Expiration) } : {}),
    };
  }

  const get = async () => {
    const exp = cached?.expiration?.getTime();
    if (!cached || (exp !== undefined && exp - now() < 5 * 60_000)) cached = await fetchOnce();
    return cached;
  };
  return { get, provider: get };
}
