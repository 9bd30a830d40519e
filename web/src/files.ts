// Files in and out. Upload is a client-streaming method, which the browser's fetch cannot
// stream, so the whole request stream (metadata, then chunks) is framed into one gRPC-Web
// body: the server reads the same messages it would from a streaming client. The browser
// bounds the size it reads into memory.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ConversationRef } from "./gen/rosetta/common/v1/common_pb";
import {
  FileInfoSchema,
  UploadRequestSchema,
  Visibility,
  type FileInfo,
} from "./gen/rosetta/files/v1/files_pb";
import type { Api } from "./api";

/** Largest file this page uploads (it holds the file in memory twice while framing). */
export const MAX_UPLOAD_BYTES = 16 * 1024 * 1024;
const CHUNK = 64 * 1024;
const UPLOAD_TIMEOUT_MS = 120_000;

/** One gRPC-Web frame: flag byte, big-endian length, payload. */
function frame(flags: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The frames of a gRPC-Web response body: messages (flag 0) and the trailer (flag 0x80). */
function readFrames(body: Uint8Array): { messages: Uint8Array[]; trailer: string } {
  const messages: Uint8Array[] = [];
  let trailer = "";
  let at = 0;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  while (at + 5 <= body.length) {
    const flags = body[at];
    const len = view.getUint32(at + 1);
    const payload = body.subarray(at + 5, at + 5 + len);
    if (flags & 0x80) {
      trailer += new TextDecoder().decode(payload);
    } else {
      messages.push(payload);
    }
    at += 5 + len;
  }
  return { messages, trailer };
}

function trailerValue(trailer: string, name: string): string | null {
  for (const line of trailer.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) {
      return line.slice(colon + 1).trim();
    }
  }
  return null;
}

export async function upload(api: Api, file: File, conversation: ConversationRef): Promise<FileInfo> {
  if (file.size > MAX_UPLOAD_BYTES) {
    throw new Error(`files over ${MAX_UPLOAD_BYTES / 1024 / 1024} MiB are not uploaded from the browser`);
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const frames = [
    frame(
      0,
      toBinary(
        UploadRequestSchema,
        create(UploadRequestSchema, {
          part: {
            case: "metadata",
            value: {
              name: file.name,
              size: BigInt(bytes.length),
              contentType: file.type || "application/octet-stream",
              visibility: Visibility.CONVERSATION,
              conversation,
            },
          },
        }),
      ),
    ),
  ];
  for (let at = 0; at < bytes.length; at += CHUNK) {
    const chunk = bytes.subarray(at, at + CHUNK);
    frames.push(
      frame(0, toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "chunk", value: chunk } }))),
    );
  }
  const response = await fetch(`${api.baseUrl}/rosetta.files.v1.FilesService/Upload`, {
    method: "POST",
    headers: {
      "content-type": "application/grpc-web+proto",
      "x-grpc-web": "1",
      "grpc-timeout": `${UPLOAD_TIMEOUT_MS}m`,
      authorization: `Bearer ${api.token}`,
    },
    body: concat(frames),
    signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
  });
  const body = new Uint8Array(await response.arrayBuffer());
  const { messages, trailer } = readFrames(body);
  // A call refused at once answers with its status in the headers (trailers-only).
  const status = response.headers.get("grpc-status") ?? trailerValue(trailer, "grpc-status");
  if (status !== "0" || messages.length !== 1) {
    const message = response.headers.get("grpc-message") ?? trailerValue(trailer, "grpc-message") ?? "";
    throw new Error(`upload failed (status ${status ?? "none"}): ${decodeURIComponent(message)}`);
  }
  return fromBinary(FileInfoSchema, messages[0]);
}

/** Downloads a file (server stream: its info, then chunks) and hands it to the browser. */
export async function download(api: Api, fileId: string): Promise<void> {
  let name = fileId;
  let type = "application/octet-stream";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const part of api.files.download({ fileId }, { timeoutMs: UPLOAD_TIMEOUT_MS })) {
    if (part.part.case === "info") {
      name = part.part.value.name || name;
      type = part.part.value.contentType || type;
    } else if (part.part.case === "chunk") {
      size += part.part.value.length;
      if (size > MAX_UPLOAD_BYTES * 4) {
        throw new Error("file too large to download in the browser");
      }
      chunks.push(part.part.value);
    }
  }
  const url = URL.createObjectURL(new Blob(chunks as BlobPart[], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
