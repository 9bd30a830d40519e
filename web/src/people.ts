// The users this page has seen, so that a message's sender has a name and handles.

import type { User } from "./gen/rosetta/account/v1/account_pb";
import type { Api } from "./api";

/** Users remembered at most; the page asks the server again for any it forgot. */
const MAX_KNOWN = 2000;

export class People {
  private known = new Map<string, User>();

  constructor(private api: Api) {}

  get(id: bigint): User | undefined {
    return this.known.get(id.toString());
  }

  remember(user: User | undefined): void {
    if (!user) return;
    if (this.known.size >= MAX_KNOWN) this.known.clear();
    this.known.set(user.id.toString(), user);
  }

  /** Fetches the profiles of the given users not yet known. */
  async ensure(ids: bigint[]): Promise<void> {
    const missing = [...new Set(ids.filter((id) => id !== 0n && !this.get(id)).map(String))].map(BigInt);
    if (missing.length === 0) return;
    try {
      const { users } = await this.api.account.getProfiles({ userIds: missing });
      users.forEach((u) => this.remember(u));
    } catch {
      // Names are a nicety: a message still shows with the sender's uid.
    }
  }
}
