// The open conversation: its history, live messages from the event stream, sending text and
// files, marking read and recalling.

import type { ConversationRef } from "./gen/rosetta/common/v1/common_pb";
import { MessageKind, type Message } from "./gen/rosetta/messaging/v1/messaging_pb";
import type { Api } from "./api";
import { byId, displayName, el, errorText, handles, time } from "./dom";
import type { People } from "./people";
import { download, upload } from "./files";

export type Target = { kind: "user" | "group"; id: bigint };

/** Messages of history loaded when a conversation opens. */
const HISTORY = 50;
/** Messages kept on the page per conversation; older ones are dropped from view. */
const MAX_SHOWN = 500;

export function ref(target: Target): ConversationRef {
  return {
    $typeName: "rosetta.common.v1.ConversationRef",
    ref: target.kind === "user" ? { case: "userId", value: target.id } : { case: "groupId", value: target.id },
  };
}

export function key(target: Target): string {
  return `${target.kind}-${target.id}`;
}

export class Chat {
  open: Target | null = null;
  private conversationId = 0n;
  private readSeq = 0n;

  constructor(
    private api: Api,
    private people: People,
    private status: (text: string) => void,
    private onRead: (target: Target) => void,
  ) {
    byId("send-btn").addEventListener("click", () => void this.sendText());
    byId<HTMLInputElement>("message-input").addEventListener("keydown", (e) => {
      if ((e as KeyboardEvent).key === "Enter") void this.sendText();
    });
    byId("upload-btn").addEventListener("click", () => void this.sendFile());
  }

  /** Where a message belongs, seen from this user. */
  targetOf(message: Message): Target {
    if (message.to.case === "toGroupId") return { kind: "group", id: message.to.value };
    const peer = message.senderId === this.api.myId ? (message.to.value ?? 0n) : message.senderId;
    return { kind: "user", id: peer };
  }

  async show(target: Target, title: string): Promise<void> {
    this.open = target;
    this.conversationId = 0n;
    this.readSeq = 0n;
    byId("chat").hidden = false;
    byId("chat-title").textContent = title;
    byId("chat").dataset.conversation = key(target);
    byId("chat").dataset.loaded = "false";
    const list = byId("messages");
    list.replaceChildren();
    try {
      const history = await this.api.messaging.listMessages({ conversation: ref(target), limit: HISTORY });
      if (!this.isOpen(target)) return;
      // History comes newest first or oldest first depending on paging; show by seq.
      const sorted = [...history.messages].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
      await this.people.ensure(sorted.map((m) => m.senderId));
      for (const message of sorted) this.append(message);
      byId("chat").dataset.loaded = "true";
      await this.markRead();
    } catch (err) {
      this.status(`history: ${errorText(err)}`);
    }
  }

  close(): void {
    this.open = null;
    byId("chat").hidden = true;
  }

  isOpen(target: Target): boolean {
    return this.open !== null && key(this.open) === key(target);
  }

  /** A message from the event stream; true when it was shown in the open conversation. */
  async received(message: Message): Promise<boolean> {
    const target = this.targetOf(message);
    if (!this.isOpen(target)) return false;
    await this.people.ensure([message.senderId]);
    this.append(message);
    await this.markRead();
    return true;
  }

  recalled(messageId: bigint): void {
    const item = document.querySelector<HTMLElement>(`#messages [data-id="${messageId}"]`);
    if (item) this.renderRecalled(item);
  }

  private append(message: Message): void {
    const list = byId("messages");
    if (list.querySelector(`[data-id="${message.id}"]`)) return;
    this.conversationId = message.conversationId;
    const mine = message.senderId === this.api.myId;
    const sender = this.people.get(message.senderId);
    const body = el("span", { class: "text" }, message.text);
    const item = el(
      "li",
      {
        "data-testid": "message",
        "data-id": message.id.toString(),
        "data-seq": message.seq.toString(),
        "data-sender": message.senderId.toString(),
        class: mine ? "mine" : "theirs",
      },
      el(
        "div",
        { class: "meta" },
        el("strong", { class: "sender" }, mine ? "me" : displayName(sender, message.senderId)),
        el("span", { class: "handles" }, handles(sender, message.senderId)),
        el("time", {}, message.clientTime || time(message.sentAtMs)),
      ),
      body,
    );
    if (message.fileId) {
      item.append(
        el(
          "button",
          {
            class: "download",
            "data-testid": `download-${message.fileId}`,
            onclick: () => void download(this.api, message.fileId).catch((e) => this.status(errorText(e))),
          },
          "Download",
        ),
      );
    }
    if (mine && !message.recalled) {
      item.append(
        el(
          "button",
          {
            class: "recall",
            "data-testid": `recall-${message.id}`,
            onclick: () => void this.recall(message.id),
          },
          "Recall",
        ),
      );
    }
    if (message.recalled) this.renderRecalled(item);
    if (message.seq > this.readSeq) this.readSeq = message.seq;
    list.append(item);
    while (list.children.length > MAX_SHOWN) list.firstElementChild?.remove();
    list.scrollTop = list.scrollHeight;
  }

  private renderRecalled(item: HTMLElement): void {
    item.classList.add("recalled");
    item.dataset.recalled = "true";
    const text = item.querySelector(".text");
    if (text) text.textContent = "(message recalled)";
    item.querySelector(".recall")?.remove();
    item.querySelector(".download")?.remove();
  }

  private async markRead(): Promise<void> {
    const target = this.open;
    if (!target || this.readSeq === 0n) return;
    try {
      await this.api.messaging.markRead({ conversation: ref(target), upToSeq: this.readSeq });
      this.onRead(target);
    } catch (err) {
      this.status(`mark read: ${errorText(err)}`);
    }
  }

  private async sendText(): Promise<void> {
    const input = byId<HTMLInputElement>("message-input");
    const text = input.value.trim();
    if (!text || !this.open) return;
    const sent = await this.send({ text, kind: MessageKind.TEXT, fileId: "" });
    if (sent) input.value = "";
  }

  private async sendFile(): Promise<void> {
    const input = byId<HTMLInputElement>("file-input");
    const file = input.files?.[0];
    if (!file || !this.open) return;
    try {
      this.status(`uploading ${file.name}…`);
      const info = await upload(this.api, file, ref(this.open));
      await this.send({ text: info.name, kind: MessageKind.FILE, fileId: info.id });
      input.value = "";
      this.status(`sent ${info.name}`);
    } catch (err) {
      this.status(`upload: ${errorText(err)}`);
    }
  }

  private async send(content: { text: string; kind: MessageKind; fileId: string }): Promise<boolean> {
    const target = this.open;
    if (!target) return false;
    try {
      const response = await this.api.messaging.sendMessage({
        to: target.kind === "user" ? { case: "toUserId", value: target.id } : { case: "toGroupId", value: target.id },
        kind: content.kind,
        text: content.text,
        fileId: content.fileId,
        clientMessageId: crypto.randomUUID(),
        clientTime: new Date().toLocaleTimeString(),
      });
      if (response.message && this.isOpen(target)) this.append(response.message);
      return true;
    } catch (err) {
      this.status(`send: ${errorText(err)}`);
      return false;
    }
  }

  private async recall(messageId: bigint): Promise<void> {
    try {
      await this.api.messaging.recallMessage({ messageId });
      this.recalled(messageId);
    } catch (err) {
      this.status(`recall: ${errorText(err)}`);
    }
  }
}
