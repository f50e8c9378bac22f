import type { Config } from '../config.ts';
import type { Sql } from '../database.ts';
import { ValidationError } from '../errors.ts';
import type { Channel } from '../notification.ts';
import type { ChannelProvider } from './channelProvider.ts';
import { InAppChannel } from './inAppChannel.ts';
import { WebhookChannel } from './webhookChannel.ts';

/** The providers this process can deliver with, by channel. A channel missing here is refused. */
export type Channels = Partial<Record<Channel, ChannelProvider>>;

export function createChannels(config: Config, sql: Sql): Channels {
  return {
    IN_APP: new InAppChannel(sql),
    WEBHOOK: new WebhookChannel({
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      secret: config.WEBHOOK_SECRET,
      allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    }),
  };
}

/** The provider for `channel`, or a 400-class error saying that none is configured. */
export function providerFor(channels: Channels, channel: Channel): ChannelProvider {
  const provider = channels[channel];
  if (!provider) {
    throw new ValidationError(
      `${channel} notifications cannot be sent: no ${channel} provider is configured on this server`,
      'channel_not_configured',
    );
  }
  return provider;
}
