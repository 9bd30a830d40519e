// Rosetta Web: sign-up and login, then the event stream that keeps the page live.

import { Code, ConnectError } from "@connectrpc/connect";
import { PasswordScheme, type LoginResponse } from "./gen/rosetta/account/v1/account_pb";
import { PresenceStatus } from "./gen/rosetta/social/v1/social_pb";
import type { Event } from "./gen/rosetta/messaging/v1/messaging_pb";
import { Api } from "./api";
import { byId, displayName, errorText, handles } from "./dom";
import { People } from "./people";
import { Chat, type Target } from "./chat";
import { Sidebar } from "./sidebar";
import { Groups } from "./groups";

/** Waits before reopening a broken event stream, growing to this bound. */
const MAX_BACKOFF_MS = 10_000;
/** Refreshes the access token this long before it expires. */
const REFRESH_EARLY_MS = 60_000;

function status(text: string): void {
  byId("status").textContent = text;
}

class App {
  private people: People;
  private chat: Chat;
  private sidebar: Sidebar;
  private groups: Groups;
  private stream: AbortController | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private api: Api) {
    this.people = new People(api);
    this.chat = new Chat(api, this.people, status, (t) => this.sidebar.clearUnread(t));
    const open = (t: Target, title: string) => void this.chat.show(t, title);
    this.sidebar = new Sidebar(api, this.people, status, open);
    this.groups = new Groups(api, status, open, (k) => this.sidebar.unreadText(k));
    byId("register-btn").addEventListener("click", () => void this.register());
    byId("login-btn").addEventListener("click", () => void this.login());
    byId("logout-btn").addEventListener("click", () => void this.logout());
  }

  private credentials(): { username: string; password: string; nickname: string } {
    return {
      username: byId<HTMLInputElement>("username").value.trim(),
      password: byId<HTMLInputElement>("password").value,
      nickname: byId<HTMLInputElement>("nickname").value.trim(),
    };
  }

  private async register(): Promise<void> {
    const { username, password, nickname } = this.credentials();
    try {
      await this.api.account.register({
        username,
        password,
        passwordScheme: PasswordScheme.PLAIN,
        nickname: nickname || username,
      });
      status(`registered ${username}; logging in…`);
      await this.login();
    } catch (err) {
      status(`register: ${errorText(err)}`);
    }
  }

  private async login(): Promise<void> {
    const { username, password } = this.credentials();
    try {
      const session = await this.api.account.login({
        identifier: { case: "username", value: username },
        password,
        passwordScheme: PasswordScheme.PLAIN,
        client: "rosetta-web",
      });
      await this.start(session);
    } catch (err) {
      status(`login: ${errorText(err)}`);
    }
  }

  private async start(session: LoginResponse): Promise<void> {
    this.api.session = session;
    this.scheduleRefresh();
    const me = session.user;
    this.people.remember(me);
    byId("auth").hidden = true;
    byId("app").hidden = false;
    const meNode = byId("me");
    meNode.textContent = `${displayName(me, this.api.myId)} — ${handles(me, this.api.myId)}`;
    meNode.dataset.id = this.api.myId.toString();
    status("");
    this.stream = new AbortController();
    void this.subscribe(this.stream.signal);
    await Promise.all([this.sidebar.refreshAll(), this.groups.refresh()]);
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const session = this.api.session;
    if (!session) return;
    const wait = Math.max(5_000, Number(session.accessExpiresAtMs) - Date.now() - REFRESH_EARLY_MS);
    this.refreshTimer = setTimeout(async () => {
      try {
        const next = await this.api.account.refresh({ refreshToken: session.refreshToken });
        if (this.api.session === session) {
          this.api.session = next;
          this.scheduleRefresh();
        }
      } catch (err) {
        status(`session: ${errorText(err)}; log in again`);
      }
    }, wait);
  }

  /** The event stream: resumes after the last event seen whenever it breaks. */
  private async subscribe(signal: AbortSignal): Promise<void> {
    let after: bigint | undefined;
    let backoff = 500;
    const body = document.body;
    while (!signal.aborted) {
      try {
        const events = this.api.messaging.subscribe({ afterSeq: after }, { signal, timeoutMs: 0 });
        for await (const response of events) {
          backoff = 500;
          if (response.item.case === "caughtUp") {
            after = response.item.value.headSeq > (after ?? 0n) ? response.item.value.headSeq : after;
            body.dataset.live = "true";
          } else if (response.item.case === "event") {
            const event = response.item.value;
            if (event.seq > 0n) after = event.seq;
            await this.onEvent(event);
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ConnectError && err.code === Code.Unauthenticated) {
          status("signed out by the server; log in again");
          return;
        }
        status(`event stream: ${errorText(err)}; reconnecting`);
      }
      body.dataset.live = "false";
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  private async onEvent(event: Event): Promise<void> {
    const kind = event.kind;
    switch (kind.case) {
      case "message": {
        const shown = await this.chat.received(kind.value);
        if (!shown && kind.value.senderId !== this.api.myId) {
          this.sidebar.bumpUnread(this.chat.targetOf(kind.value));
        }
        break;
      }
      case "messageRecalled":
        this.chat.recalled(kind.value.messageId);
        break;
      case "friendRequestReceived":
        await this.sidebar.refreshRequests();
        break;
      case "friendRequestAnswered":
      case "friendRemoved":
        await this.sidebar.refreshContacts();
        break;
      case "presenceChanged":
        this.sidebar.presenceChanged(kind.value.userId, kind.value.status);
        break;
      case "memberJoined":
      case "memberLeft":
      case "membersAdded":
      case "groupDissolved":
      case "groupUpdated":
      case "groupInvitationReceived":
      case "groupInvitationAnswered":
        await this.groups.refresh();
        break;
      default:
        break;
    }
  }

  private async logout(): Promise<void> {
    clearTimeout(this.refreshTimer);
    this.stream?.abort();
    try {
      await this.api.messaging.setPresence({ status: PresenceStatus.OFFLINE });
      await this.api.account.logout({});
    } catch (err) {
      status(`logout: ${errorText(err)}`);
    }
    this.api.session = null;
    this.chat.close();
    byId("app").hidden = true;
    byId("auth").hidden = false;
    document.body.dataset.live = "false";
  }
}

async function boot(): Promise<void> {
  try {
    const api = await Api.connect();
    new App(api);
    document.body.dataset.ready = "true";
  } catch (err) {
    status(`cannot reach the server: ${errorText(err)}`);
  }
}

void boot();

export type { Target };
