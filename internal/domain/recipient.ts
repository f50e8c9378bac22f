import { z } from 'zod';
import { E164, emailAddressSchema } from './addressFormats.ts';
import { CHANNELS } from './notification.ts';

/**
 * Where a channel finds a user's address when a request gives no `to`: a field of the user's
 * profile (`PUT /users/:id`), or the user's push subscriptions.
 */
export type ProfileAddress = 'email' | 'phone' | 'webhook_url' | 'push_subscriptions';

/** A browser's Web Push subscription as stored (the JSON of a PushSubscription, flattened). */
export interface PushSubscription {
  endpoint: string;
  p256dh: string;
  auth: string;
}

const base64url = z.string().regex(/^[A-Za-z0-9_-]+={0,2}$/, 'must be URL-safe base64');

/** A browser's PushSubscription as its `toJSON()` gives it. */
export const pushSubscriptionSchema = z
  .object({
    endpoint: z.url({ protocol: /^https?$/ }).max(2048),
    keys: z.object({
      p256dh: base64url.min(80).max(100),
      auth: base64url.min(16).max(32),
    }),
  })
  .meta({ id: 'PushSubscription' });

/** `PUT /users/:id`: the whole profile; a field left out is cleared. */
export const recipientProfileSchema = z
  .object({
    // 254: the longest address SMTP carries (RFC 5321's path limit less its brackets).
    email: z.email().max(254).nullish(),
    phone: z.string().regex(E164, 'must be an E.164 number such as +14155550100').nullish(),
    webhook_url: z.url({ protocol: /^https?$/ }).max(2048).nullish(),
    locale: z
      .string()
      .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a language tag such as en or pt-BR')
      .nullish(),
    push_subscriptions: z.array(pushSubscriptionSchema).max(50).default([]),
  })
  .meta({ id: 'RecipientProfileInput' });
export type RecipientProfileInput = z.infer<typeof recipientProfileSchema>;

/** `PUT /users/:id/preferences`: the channels the user does not want, replacing the previous set. */
export const preferencesSchema = z
  .object({
    opted_out: z.array(z.enum(CHANNELS)).max(CHANNELS.length),
  })
  .meta({ id: 'PreferencesInput' });

/** A recipient as the API shows it; `RecipientProfile` is inferred, the OpenAPI document generated from it. */
export const recipientProfileJsonSchema = z
  .object({
    user_id: z.string(),
    email: z.string().nullable(),
    phone: z.string().nullable(),
    webhook_url: z.string().nullable(),
    locale: z.string().nullable(),
    push_subscriptions: z.array(pushSubscriptionSchema),
    opted_out: z.array(z.enum(CHANNELS)),
    created_at: z.iso.datetime().nullable().meta({ description: 'null when only preferences or push subscriptions are stored' }),
    updated_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'RecipientProfile' });

export type RecipientProfile = z.infer<typeof recipientProfileJsonSchema>;

/** A user's opt-outs as `GET` and `PUT /users/:id/preferences` answer them. */
export const preferencesJsonSchema = z
  .object({ user_id: z.string(), opted_out: z.array(z.enum(CHANNELS)) })
  .meta({ id: 'Preferences' });

export type PreferencesJson = z.infer<typeof preferencesJsonSchema>;
