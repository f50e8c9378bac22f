import { z } from 'zod';
import { CHANNELS, type Channel } from './notification.ts';

/** E.164: a plus sign, then 7 to 15 digits, the first not 0. */
export const E164 = /^\+[1-9]\d{6,14}$/;

const base64url = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/, 'must be URL-safe base64');

/** A browser's PushSubscription as its `toJSON()` gives it. */
export const pushSubscriptionSchema = z.object({
  endpoint: z.url({ protocol: /^https?$/ }).max(2048),
  keys: z.object({
    p256dh: base64url.min(80).max(100),
    auth: base64url.min(16).max(32),
  }),
});

/** `PUT /users/:id`: the whole profile; a field left out is cleared. */
export const recipientProfileSchema = z.object({
  // 254: the longest address SMTP carries (RFC 5321's path limit less its brackets).
  email: z.email().max(254).nullish(),
  phone: z.string().regex(E164, 'must be an E.164 number such as +14155550100').nullish(),
  webhook_url: z.url({ protocol: /^https?$/ }).max(2048).nullish(),
  locale: z
    .string()
    .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a language tag such as en or pt-BR')
    .nullish(),
  push_subscriptions: z.array(pushSubscriptionSchema).max(50).default([]),
});
export type RecipientProfileInput = z.infer<typeof recipientProfileSchema>;

/** `PUT /users/:id/preferences`: the channels the user does not want, replacing the previous set. */
export const preferencesSchema = z.object({
  opted_out: z.array(z.enum(CHANNELS)).max(CHANNELS.length),
});

export interface PushSubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** A recipient as the API shows it. */
export interface RecipientProfile {
  user_id: string;
  email: string | null;
  phone: string | null;
  webhook_url: string | null;
  locale: string | null;
  push_subscriptions: PushSubscriptionJson[];
  opted_out: Channel[];
  created_at: string | null;
  updated_at: string | null;
}
