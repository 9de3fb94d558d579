/** A file that is not what it claims to be: names the file and what is wrong with it. */
export class FormatError extends Error {
  override name = 'FormatError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}
