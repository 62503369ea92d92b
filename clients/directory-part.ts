/** One chunk of a DIRECTORY_PART listing (spec §7.6). */
export interface DirectoryPart {
  /** The node's generation as decimal text (a u64); a change means the listing changed. */
  readonly generation: string;
  readonly names: string[];
  /** True when this chunk ends the listing. */
  readonly done: boolean;
}
