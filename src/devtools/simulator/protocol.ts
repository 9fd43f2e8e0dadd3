/**
 * The simulator's side of the HTTP contract: routes and names read from the request target,
 * request headers, list cursors, and JSON replies written back.
 */
import type http from 'node:http';
import { finished } from 'node:stream/promises';
import { nameProblem } from '../../source/names';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, type Receipt } from '../../recording-system/port';

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Route = { name: 'file'; orderId: string; fileName: string } | { name: 'list' };

/** One request being served. `abandoned` fires when the client goes away before the answer. */
export interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  abandoned: AbortSignal;
}

export function openExchange(req: http.IncomingMessage, res: http.ServerResponse): Exchange {
  const abandon = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abandon.abort();
  });
  return { req, res, abandoned: abandon.signal };
}

export function problem(status: number, error: string, reason: string, extra: Record<string, unknown> = {}): Reply {
  return { status, body: { error, reason, ...extra } };
}

export function notAllowed(allow: string): Reply {
  return { ...problem(405, 'method not allowed', `use ${allow}`), headers: { Allow: allow } };
}

/** Sends a reply once the request body is read to its end, so clients still sending are not cut off. */
export async function send(ex: Exchange, reply: Reply): Promise<void> {
  if (!ex.req.readableEnded) {
    ex.req.resume();
    await finished(ex.req).catch(() => undefined);
  }
  if (ex.abandoned.aborted || ex.res.destroyed) return;
  writeReply(ex.res, reply);
}

export function writeReply(res: http.ServerResponse, reply: Reply): void {
  const headers: Record<string, string | number> = { ...reply.headers };
  if (reply.body === undefined) {
    res.writeHead(reply.status, headers).end();
    return;
  }
  const text = JSON.stringify(reply.body);
  headers['Content-Type'] = 'application/json';
  headers['Content-Length'] = Buffer.byteLength(text);
  res.writeHead(reply.status, headers).end(text);
}

export function splitTarget(target: string): { pathname: string; query: URLSearchParams } {
  const mark = target.indexOf('?');
  if (mark < 0) return { pathname: target, query: new URLSearchParams() };
  return { pathname: target.slice(0, mark), query: new URLSearchParams(target.slice(mark + 1)) };
}

/** The route of a path, or the error reply for a path that names nothing or names it badly. */
export function resolveRoute(pathname: string): Route | Reply {
  if (pathname === '/files') return { name: 'list' };
  const match = /^\/records\/([^/]+)\/files\/(.+)$/.exec(pathname);
  if (!match) return problem(404, 'not found', 'no such route');
  const [, rawOrderId = '', rawFileName = ''] = match;
  const orderId = decodeSegment(rawOrderId);
  const fileName = decodeSegment(rawFileName);
  if (orderId === null || fileName === null) return problem(400, 'bad request', 'invalid percent-encoding in the path');
  const orderProblem = nameProblem(orderId);
  if (orderProblem) return problem(400, 'bad request', `orderId ${orderProblem}`);
  const fileProblem = nameProblem(fileName);
  if (fileProblem) return problem(400, 'bad request', `fileName ${fileProblem}`);
  return { name: 'file', orderId, fileName };
}

function decodeSegment(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

export function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first?.trim() || undefined;
}

/** The page size asked for: 100 when absent, at most 1000; null when not a whole number from 1. */
export function parseLimit(raw: string | null): number | null {
  if (raw === null || raw === '') return DEFAULT_LIST_LIMIT;
  if (!/^\d+$/.test(raw)) return null;
  const limit = Number(raw);
  return limit >= 1 ? Math.min(limit, MAX_LIST_LIMIT) : null;
}

export function encodeCursor(last: Receipt): string {
  return Buffer.from(JSON.stringify([last.orderId, last.fileName])).toString('base64url');
}

/** The position a cursor names; undefined when it is not a cursor this simulator gives out. */
export function decodeCursor(cursor: string): { orderId: string; fileName: string } | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && value.every((part) => typeof part === 'string')) {
      return { orderId: value[0] as string, fileName: value[1] as string };
    }
  } catch {
    // Falls through: not a cursor.
  }
  return undefined;
}
