import {
  clientSettingsFrom,
  type ClientFlags,
  type ClientSettings,
} from './client-settings-from.js';
import { loadYamlFile } from './load-file.js';
import { clientFileSchema } from './schema.js';

export * from './client-settings-from.js';

/** Combines the config file (if any) and flags into client settings; flags win. */
export function resolveClientSettings(flags: ClientFlags): ClientSettings {
  return clientSettingsFrom(
    flags,
    flags.config ? loadYamlFile(flags.config, clientFileSchema) : {},
  );
}
