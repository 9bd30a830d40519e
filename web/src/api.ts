// The connection to Rosetta: one gRPC-Web transport to the gRPC listener (whose address the
// page reads from /config.json, served next to it), the four service clients, and the session
// whose access token every call carries.

import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AccountService, type LoginResponse } from "./gen/rosetta/account/v1/account_pb";
import { SocialService } from "./gen/rosetta/social/v1/social_pb";
import { MessagingService } from "./gen/rosetta/messaging/v1/messaging_pb";
import { FilesService } from "./gen/rosetta/files/v1/files_pb";

/** What the web handler tells the page: where the gRPC(-Web) endpoint is. */
interface PageConfig {
  /** Full URL when the server names one; empty: this page's host at `grpcPort`. */
  grpcUrl: string;
  grpcPort: number;
}

/** A unary call that does not answer within this long fails (every network call has a deadline). */
const CALL_TIMEOUT_MS = 15_000;

export class Api {
  readonly baseUrl: string;
  readonly account: Client<typeof AccountService>;
  readonly social: Client<typeof SocialService>;
  readonly messaging: Client<typeof MessagingService>;
  readonly files: Client<typeof FilesService>;
  session: LoginResponse | null = null;

  private constructor(baseUrl: string) {
    this.baseUrl = baseUrl;
    const bearer: Interceptor = (next) => async (req) => {
      if (this.session) {
        req.header.set("authorization", `Bearer ${this.session.accessToken}`);
      }
      return next(req);
    };
    const transport = createGrpcWebTransport({
      baseUrl,
      interceptors: [bearer],
      defaultTimeoutMs: CALL_TIMEOUT_MS,
    });
    this.account = createClient(AccountService, transport);
    this.social = createClient(SocialService, transport);
    this.messaging = createClient(MessagingService, transport);
    this.files = createClient(FilesService, transport);
  }

  static async connect(): Promise<Api> {
    const response = await fetch("/config.json", { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
    if (!response.ok) {
      throw new Error(`config.json: HTTP ${response.status}`);
    }
    const config = (await response.json()) as PageConfig;
    const baseUrl =
      config.grpcUrl || `${location.protocol}//${location.hostname}:${config.grpcPort}`;
    return new Api(baseUrl.replace(/\/$/, ""));
  }

  get token(): string {
    return this.session?.accessToken ?? "";
  }

  get myId(): bigint {
    return this.session?.user?.id ?? 0n;
  }
}
