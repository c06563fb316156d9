import { proxySettingsFrom, type ProxyFlags, type ProxySettings } from './proxy-settings-from.js';
import { loadYamlFile } from './load-file.js';
import { proxyFileSchema } from './schema.js';

export * from './proxy-settings-from.js';

/** Combines the config file (if any) and flags into proxy settings; flags win. */
export function resolveProxySettings(flags: ProxyFlags): ProxySettings {
  return proxySettingsFrom(flags, flags.config ? loadYamlFile(flags.config, proxyFileSchema) : {});
}
