import { ConfigError, loadConfig, type AppConfig } from '../config/env';

/**
 * The configuration for a command, or null after printing what is wrong with it (the command
 * then exits with 1). Anything other than a configuration error is thrown.
 */
export function loadCliConfig(): AppConfig | null {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return null;
    }
    throw error;
  }
}
