// The left column's people: user search, friend requests, contacts with presence and unread
// counts.

import { Direction, PresenceStatus, RequestState } from "./gen/rosetta/social/v1/social_pb";
import type { User } from "./gen/rosetta/account/v1/account_pb";
import type { Api } from "./api";
import { byId, displayName, el, errorText, handles } from "./dom";
import type { People } from "./people";
import { key, type Target } from "./chat";

const PAGE = 100;

export class Sidebar {
  private presence = new Map<string, PresenceStatus>();
  private unread = new Map<string, number>();

  constructor(
    private api: Api,
    private people: People,
    private status: (text: string) => void,
    private open: (target: Target, title: string) => void,
  ) {
    byId("search-btn").addEventListener("click", () => void this.search());
    byId<HTMLInputElement>("search-input").addEventListener("keydown", (e) => {
      if ((e as KeyboardEvent).key === "Enter") void this.search();
    });
  }

  async refreshAll(): Promise<void> {
    await Promise.all([this.refreshContacts(), this.refreshRequests(), this.refreshUnread()]);
  }

  async refreshContacts(): Promise<void> {
    try {
      const { contacts } = await this.api.social.listContacts({ page: { pageSize: PAGE } });
      const list = byId("contacts");
      list.replaceChildren();
      for (const contact of contacts) {
        const user = contact.user;
        if (!user) continue;
        this.people.remember(user);
        this.presence.set(user.id.toString(), contact.presence?.status ?? PresenceStatus.OFFLINE);
        list.append(this.contactItem(user));
      }
      list.dataset.count = String(contacts.length);
    } catch (err) {
      this.status(`contacts: ${errorText(err)}`);
    }
  }

  private contactItem(user: User): HTMLElement {
    const id = user.id.toString();
    const target: Target = { kind: "user", id: user.id };
    return el(
      "li",
      { "data-testid": `contact-${id}`, "data-username": user.username, class: "contact" },
      el(
        "button",
        { class: "open", onclick: () => this.open(target, displayName(user, user.id)) },
        el("span", { class: "name" }, displayName(user, user.id)),
        el("span", { class: "handles" }, handles(user, user.id)),
      ),
      el("span", { class: "presence", "data-testid": `presence-${id}` }, this.presenceText(id)),
      el("span", { class: "unread", "data-testid": `unread-${key(target)}` }, this.unreadText(key(target))),
    );
  }

  private presenceText(id: string): string {
    return this.presence.get(id) === PresenceStatus.ONLINE ? "online" : "offline";
  }

  unreadText(k: string): string {
    const n = this.unread.get(k) ?? 0;
    return n > 0 ? String(n) : "";
  }

  presenceChanged(userId: bigint, status: PresenceStatus): void {
    const id = userId.toString();
    this.presence.set(id, status);
    const span = document.querySelector(`[data-testid="presence-${id}"]`);
    if (span) span.textContent = this.presenceText(id);
  }

  bumpUnread(target: Target): void {
    const k = key(target);
    this.unread.set(k, (this.unread.get(k) ?? 0) + 1);
    this.renderUnread(k);
  }

  clearUnread(target: Target): void {
    const k = key(target);
    this.unread.delete(k);
    this.renderUnread(k);
  }

  private renderUnread(k: string): void {
    const span = document.querySelector(`[data-testid="unread-${k}"]`);
    if (span) span.textContent = this.unreadText(k);
  }

  private async refreshUnread(): Promise<void> {
    try {
      const { conversations } = await this.api.messaging.getUnreadCounts({});
      for (const c of conversations) {
        const ref = c.ref?.ref;
        if (!ref || ref.case === undefined) continue;
        const k = key({ kind: ref.case === "userId" ? "user" : "group", id: ref.value });
        this.unread.set(k, Number(c.unreadCount));
        this.renderUnread(k);
      }
    } catch (err) {
      this.status(`unread: ${errorText(err)}`);
    }
  }

  async refreshRequests(): Promise<void> {
    try {
      const { requests } = await this.api.social.listFriendRequests({
        direction: Direction.INCOMING,
        page: { pageSize: PAGE },
      });
      const list = byId("requests");
      list.replaceChildren();
      for (const request of requests) {
        if (request.state !== RequestState.PENDING || !request.from) continue;
        const from = request.from;
        this.people.remember(from);
        const id = from.id.toString();
        const answer = (accept: boolean) => async () => {
          try {
            await this.api.social.respondFriendRequest({ request: { case: "requestId", value: request.id }, accept });
            await Promise.all([this.refreshRequests(), this.refreshContacts()]);
          } catch (err) {
            this.status(`friend request: ${errorText(err)}`);
          }
        };
        list.append(
          el(
            "li",
            { "data-testid": `request-${id}`, "data-username": from.username },
            el("span", { class: "name" }, displayName(from, from.id)),
            el("span", { class: "handles" }, handles(from, from.id)),
            request.note ? el("q", {}, request.note) : null,
            el("button", { "data-testid": `accept-${id}`, onclick: answer(true) }, "Accept"),
            el("button", { "data-testid": `reject-${id}`, onclick: answer(false) }, "Reject"),
          ),
        );
      }
    } catch (err) {
      this.status(`requests: ${errorText(err)}`);
    }
  }

  private async search(): Promise<void> {
    const text = byId<HTMLInputElement>("search-input").value.trim();
    if (!text) return;
    const query = /^\d+$/.test(text)
      ? ({ case: "userId", value: BigInt(text) } as const)
      : ({ case: "name", value: text } as const);
    const list = byId("search-results");
    try {
      const { users } = await this.api.account.searchUsers({ query, page: { pageSize: 20 } });
      list.replaceChildren();
      for (const user of users) {
        this.people.remember(user);
        const id = user.id.toString();
        const mine = user.id === this.api.myId;
        list.append(
          el(
            "li",
            { "data-testid": `search-result-${id}`, "data-username": user.username },
            el("span", { class: "name" }, displayName(user, user.id)),
            el("span", { class: "handles" }, handles(user, user.id)),
            mine
              ? null
              : el("button", { "data-testid": `add-friend-${id}`, onclick: () => void this.addFriend(user) }, "Add friend"),
          ),
        );
      }
      list.dataset.done = "true";
      if (users.length === 0) list.append(el("li", { class: "empty" }, "nobody found"));
    } catch (err) {
      this.status(`search: ${errorText(err)}`);
    }
  }

  private async addFriend(user: User): Promise<void> {
    try {
      await this.api.social.sendFriendRequest({ to: { ref: { case: "id", value: user.id } }, note: "" });
      this.status(`friend request sent to ${displayName(user, user.id)}`);
    } catch (err) {
      this.status(`friend request: ${errorText(err)}`);
    }
  }
}
