/** The caller, from a verified access token. */
export interface AuthUser {
  userId: string;
  email?: string;
  roles: string[];
  isAdmin: boolean;
}
