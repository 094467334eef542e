/** The CLI's help texts: the overview (`inferzip --help`) and one per command (`inferzip <cmd> --help`). */

const COMMON = `  --threads N         CPU threads for the codec (default: all cores)
  --json              print one JSON object on stdout (no progress bar)
  -h, --help          this help`;

const PROGRESS = `  -q, --quiet         no progress output
  --progress          progress even when stderr is not a terminal (one line per unit)`;

export const COMMAND_HELP = {
  compress: `Usage: inferzip compress IN -o OUT [options]

Compresses a BF16 safetensors model losslessly into one DFloat11-layout file.
IN is a .safetensors file, a model directory or a model.safetensors.index.json.
OUT is the file to write; a directory (or a path ending in /) gets a DFloat11 model
directory (model.safetensors + config.json with dfloat11_config).

Options:
  -o, --output PATH   where to write (required)
  -f, --force         replace OUT if it exists (otherwise an existing OUT is an error)
  --allow-uncompressed
                      accept a model with nothing to compress (no BF16 matrix, or all of
                      them kept raw); without it that is an error and nothing is kept
${PROGRESS}
${COMMON}
`,
  decompress: `Usage: inferzip decompress IN -o OUT [options]

Rebuilds the original safetensors file(s) byte for byte from a file written by
\`inferzip compress\`; every tensor's crc32 and every file's sha256 is checked. A sharded
original comes back as a directory OUT. IN must be a compressed file: a plain safetensors
file gives a NOT_COMPRESSED error.

Options:
  -o, --output PATH   the file (or, for a sharded original, directory) to write (required)
  -f, --force         replace existing output files (otherwise they are an error)
${PROGRESS}
${COMMON}
`,
  verify: `Usage: inferzip verify FILE [options]

Decodes every unit of a compressed model (an inferzip file or a DFloat11 model directory)
and checks every checksum it carries. Exit code 1 on any mismatch; a plain safetensors
file gives a NOT_COMPRESSED error.

Options:
${PROGRESS}
${COMMON}
`,
  inspect: `Usage: inferzip inspect FILE [options]

A compressed model: its units, sizes, bits/weight and the entropy bound.
A plain safetensors file (or model directory): its tensors by dtype, and what
\`inferzip compress\` would compress.

Options:
  --decode            decode DFloat11 units whose entropy the file does not record
${COMMON}
`,
  bench: `Usage: inferzip bench MODEL [options]

Codec throughput (encode, decode) on MODEL, a BF16 safetensors file; the median of N runs.
From a clone of the repository, MODEL defaults to the bundled stories260K model.

Options:
  --runs N            runs to take the median of (default 5)
${COMMON}
`,
} as const;

export type Command = keyof typeof COMMAND_HELP;
export const COMMANDS = Object.keys(COMMAND_HELP) as Command[];

export const HELP = `inferzip: lossless DFloat11 compression of BF16 safetensors models

Usage:
  inferzip compress IN -o OUT      compress a model (a .safetensors file, a model directory
                                   or a model.safetensors.index.json) into one DFloat11 file
  inferzip decompress IN -o OUT    rebuild the original file(s) byte for byte
  inferzip verify FILE             decode every unit and check every checksum
  inferzip inspect FILE            what a compressed (or plain) safetensors model holds
  inferzip bench MODEL             codec throughput

Run 'inferzip <command> --help' for a command's options.
  -v, --version       the version

Outputs are never replaced unless --force is given. Exit codes: 0 success, 1 failure
(I/O error, corrupt data, verify mismatch, nothing to compress), 2 usage error.
`;
