/**
 * How secrets are shown back to the person running setup: enough to recognise which key it is
 * (its kind and last four characters), never enough to use it.
 */
export function maskSecret(value: string): string {
  const prefix = /^((?:sk|rk|pk)_(?:test|live)_|whsec_)/.exec(value)?.[1] ?? '';
  if (value.length - prefix.length <= 8) return `${prefix}…`;
  return `${prefix}…${value.slice(-4)}`;
}

/** A database URL with its password replaced. */
export function maskDatabaseUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(not a URL)';
  }
}

/** How setup prints a setting's value. */
export function displayValue(key: string, value: string): string {
  if (key === 'DATABASE_URL') return maskDatabaseUrl(value);
  if (/SECRET|KEY|TOKEN|PASSWORD/.test(key)) return maskSecret(value);
  return value;
}
