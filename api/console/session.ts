/**
 * Console sessions: signing in checks an API key once (store/api-keys.ts) and sets a signed,
 * HttpOnly cookie holding the key's id and an expiry, never the key. Every request looks the key
 * up again, so a revoked key or a changed role takes effect at once.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../../store/db';
import { roleAllows } from '../../domain/api-keys';

export const SESSION_COOKIE = 'avviso_session';
/** A working night and then some. */
export const SESSION_HOURS = 12;

export type ConsoleRole = 'viewer' | 'operator' | 'admin';

export interface ConsoleUser {
  keyId: string;
  name: string;
  role: ConsoleRole;
}

const CONSOLE_ROLES: readonly string[] = ['viewer', 'operator', 'admin'];

export function isConsoleRole(role: string): role is ConsoleRole {
  return CONSOLE_ROLES.includes(role);
}

/** Refused: not signed in (401), or a role too low (403). The console's error handler renders it. */
export class ConsoleError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function setSession(reply: FastifyReply, req: FastifyRequest, keyId: string, now = Date.now()): void {
  const value = Buffer.from(JSON.stringify({ k: keyId, e: now + SESSION_HOURS * 3_600_000 })).toString('base64url');
  reply.setCookie(SESSION_COOKIE, value, {
    signed: true,
    httpOnly: true,
    sameSite: 'lax',
    path: '/console',
    secure: req.protocol === 'https',
    maxAge: SESSION_HOURS * 3600,
  });
}

export function clearSession(reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/console' });
}

/** The signed-in user, or null: a missing, forged or expired cookie, or a key since revoked. */
export async function sessionUser(req: FastifyRequest, store: Store, now = Date.now()): Promise<ConsoleUser | null> {
  const raw = req.cookies[SESSION_COOKIE];
  if (!raw) return null;
  const unsigned = req.unsignCookie(raw);
  if (!unsigned.valid || !unsigned.value) return null;
  let payload: { k?: unknown; e?: unknown };
  try {
    payload = JSON.parse(Buffer.from(unsigned.value, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof payload.k !== 'string' || typeof payload.e !== 'number' || payload.e < now) return null;
  const key = await store.apiKeys.findOne({ _id: payload.k }, { projection: { hash: 0 } });
  if (!key || key.revokedAt || !isConsoleRole(key.role)) return null;
  return { keyId: key._id, name: key.name, role: key.role };
}

export function can(user: ConsoleUser | null, role: ConsoleRole): boolean {
  return !!user && roleAllows(user.role, role);
}

/** The user, or a ConsoleError naming the role needed. */
export function requireRole(req: FastifyRequest, role: ConsoleRole): ConsoleUser {
  const user = req.consoleUser;
  if (!user) throw new ConsoleError(401, 'sign_in_required', 'Sign in first.');
  if (!roleAllows(user.role, role))
    throw new ConsoleError(
      403,
      'forbidden',
      `This needs a key with role ${role === 'admin' ? 'admin' : `${role} or above`}; key ${user.keyId} (${user.name}) has role ${user.role}.`,
    );
  return user;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: a console POST that only reads (a search posted to keep a phone number out of the URL) is not audited. */
    consoleAudit?: boolean;
  }
  interface FastifyRequest {
    /** Who is signed in to the console (console routes only). */
    consoleUser: ConsoleUser | null;
  }
}
