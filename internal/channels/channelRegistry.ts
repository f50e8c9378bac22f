import type { Config } from '../platform/config.ts';
import { ValidationError } from '../domain/errors.ts';
import type { Channel } from '../domain/notification.ts';
import type { ChannelProvider } from './channelProvider.ts';
import { EmailChannel } from './emailChannel.ts';
import { InAppChannel } from './inAppChannel.ts';
import { PushChannel } from './pushChannel.ts';
import { SmsChannel } from './smsChannel.ts';
import { WebhookChannel } from './webhookChannel.ts';

/** The providers this process can deliver with, by channel. A channel missing here is refused. */
export type Channels = Partial<Record<Channel, ChannelProvider>>;

/** What turns each channel on, named in the refusal when it is off. */
const CONFIGURED_BY: Partial<Record<Channel, string>> = {
  EMAIL: 'SMTP_URL and EMAIL_FROM',
  SMS: 'SMS_ACCOUNT_SID, SMS_AUTH_TOKEN and SMS_FROM',
  PUSH: 'VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT',
};

/** IN_APP and WEBHOOK always; EMAIL, SMS and PUSH where the configuration names their provider. */
export function createChannels(config: Config): Channels {
  const channels: Channels = {
    IN_APP: new InAppChannel(),
    WEBHOOK: new WebhookChannel({
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      secret: config.WEBHOOK_SECRET,
      allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    }),
  };
  // The schema guarantees each group is set whole or not at all.
  if (config.SMTP_URL && config.EMAIL_FROM) {
    channels.EMAIL = new EmailChannel({ smtpUrl: config.SMTP_URL, from: config.EMAIL_FROM, timeoutMs: config.PROVIDER_TIMEOUT_MS });
  }
  if (config.SMS_ACCOUNT_SID && config.SMS_AUTH_TOKEN && config.SMS_FROM) {
    channels.SMS = new SmsChannel({
      baseUrl: config.SMS_PROVIDER_URL,
      accountSid: config.SMS_ACCOUNT_SID,
      authToken: config.SMS_AUTH_TOKEN,
      from: config.SMS_FROM,
      timeoutMs: config.PROVIDER_TIMEOUT_MS,
    });
  }
  if (config.VAPID_PUBLIC_KEY && config.VAPID_PRIVATE_KEY && config.VAPID_SUBJECT) {
    channels.PUSH = new PushChannel({
      vapid: { publicKey: config.VAPID_PUBLIC_KEY, privateKey: config.VAPID_PRIVATE_KEY, subject: config.VAPID_SUBJECT },
      timeoutMs: config.PROVIDER_TIMEOUT_MS,
      allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    });
  }
  return channels;
}

/** Lets go of the providers' connections (the SMTP pool) at shutdown. */
export async function closeChannels(channels: Channels): Promise<void> {
  await Promise.all(Object.values(channels).map((p) => p.close?.()));
}

/** The provider for `channel`, or a 400-class error saying that none is configured. */
export function providerFor(channels: Channels, channel: Channel): ChannelProvider {
  const provider = channels[channel];
  if (!provider) {
    const setting = CONFIGURED_BY[channel];
    throw new ValidationError(
      `${channel} notifications cannot be sent: no ${channel} provider is configured on this server${setting ? ` (set ${setting})` : ''}`,
      'channel_not_configured',
    );
  }
  return provider;
}
