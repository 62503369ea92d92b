/**
 * `childPath(dir, name)` is the path of child `name` of `dir`, joined as xenstore-ls does it
 * (`xenstore_client.c` `do_ls`): no doubled slash below `/`, and a relative `dir` stays
 * relative (spec §3.2).
 */
export function childPath(dir: string, name: string): string {
  return `${dir}${dir.endsWith('/') ? '' : '/'}${name}`;
}
