/**
 * TEST ONLY. An EC2 instance metadata service, version 2 only, as a fetch handler: a token from
 * `PUT /latest/api/token` (with the TTL header) is required on every metadata read; the role's
 * credentials are the ones given (moto accepts any).
 * @module
 */

/** Options of {@link fakeImds}. */
export interface FakeImdsOptions {
  readonly role?: string;
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  readonly sessionToken?: string;
  /** Expiration of the credentials (default in six hours). */
  readonly expiration?: () => Date;
}

/**
 * The handler and what it has seen.
 * @param o role and credentials.
 * @returns `handler` and the count of credential reads.
 */
export function fakeImds(o: FakeImdsOptions = {}): {
  handler: (req: Request) => Response;
  readonly credentialReads: number;
} {
  const role = o.role ?? "wallet-mpc-parent";
  const tokens = new Set<string>();
  let reads = 0;
  const handler = (req: Request): Response => {
    const path = new URL(req.url).pathname;
    if (path === "/latest/api/token") {
      if (req.method !== "PUT" || !req.headers.get("x-aws-ec2-metadata-token-ttl-seconds")) {
        return new Response("", { status: 400 });
      }
      const t = crypto.randomUUID();
      tokens.add(t);
      return new Response(t);
    }
    if (!tokens.has(req.headers.get("x-aws-ec2-metadata-token") ?? "")) {
      return new Response("", { status: 401 }); // IMDSv1 refused
    }
    if (path === "/latest/meta-data/iam/security-credentials/") return new Response(`${role}\n`);
    if (path === `/latest/meta-data/iam/security-credentials/${role}`) {
      reads++;
      return Response.json({
        Code: "Success",
        Type: "AWS-HMAC",
        AccessKeyId: o.accessKeyId ?? "ASIATESTTESTTEST",
        SecretAccessKey: o.secretAccessKey ?? "test-secret-access-key-not-real",
        Token: o.sessionToken ?? "test-session-token",
        Expiration: (o.expiration?.() ?? new Date(Date.now() + 6 * 3600_000)).toISOString(),
      });
    }
    return new Response("", { status: 404 });
  };
  return {
    handler,
    get credentialReads() {
      return reads;
    },
  };
}
