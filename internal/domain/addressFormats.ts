import { z } from 'zod';

/** `+`, then 7 to 15 digits, the country code never starting with 0 (ITU-T E.164). */
export const E164 = /^\+[1-9]\d{6,14}$/;

/** An email address SMTP can carry: RFC 5321 limits a path to 256 octets with its angle brackets. */
export const emailAddressSchema = z.email().max(254);
