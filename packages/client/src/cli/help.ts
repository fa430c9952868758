const MAIN = `Usage: clipline <command> [options]

Commands:
  submit <files|urls...>   submit videos for processing (--wait to follow them)
  status <id>              show a video's state, steps, scenes and clips
  download <ids...>        save completed videos' clips, thumbnails and voice-overs to disk
  keys create|list|revoke  manage API keys (needs an operator key)

Environment:
  CLIPLINE_URL       producer API (default http://127.0.0.1:3000)
  CLIPLINE_API_KEY   API key sent as a bearer token (default: the dev key); for "keys", an
                     operator key
  NO_COLOR           set to draw progress without colours

Exit codes: 0 success, 1 a video or request failed, 2 usage error, 130 interrupted (Ctrl-C),
143 stopped by SIGTERM, 129 by SIGHUP (on a terminal); partial downloads are removed either way.
Run "clipline <command> --help" for a command's options.
`;

const SUBMIT = `Usage: clipline submit <files|urls...> [options]

Submits each file or http(s) URL as a video. Local files are sent as absolute paths, so the
workers must see the same file system.

Options:
  --wait            follow the videos with live progress until they finish, then print a summary
  --download <dir>  with --wait: save each video's results under <dir>/<id>/ as soon as it
                    completes (see "clipline download --help" for the files)
  --title <text>    title of the video(s)
  --aspect <ratio>  clip aspect: 9:16, 1:1 or 16:9
  --clips <n>       how many clips to keep (1-20)
  --priority <p>    high, normal or low
  --json            print JSON instead of text
  -h, --help        show this help

Exit code 1 when a submission fails or, with --wait, when a video does not complete (or, with
--download, when its results could not be saved).
`;

const DOWNLOAD = `Usage: clipline download <ids...> [--out <dir>] [--json]

Saves the results of completed videos, one folder per video:

  <dir>/<id>/clip-<n>.mp4                the rendered clip (n = its rank, 0 is the best)
  <dir>/<id>/clip-<n>-thumbnail.jpg|png  its thumbnail
  <dir>/<id>/clip-<n>-voiceover.mp3      its voice-over, when one was generated
  <dir>/<id>/video.json                  the video as "clipline status <id> --json" shows it
  <dir>/<id>/.clipline-files.json        each file's name, size and server version (ETag)

Files are written as <name>.<random>.part and renamed when complete, so a file under its final
name is always whole; video.json is written last. A connection that breaks is taken up where it
broke (up to three times). Downloading again fetches only the files the server has in another
version than the one on disk, and those gone from the folder or of another size there.

Options:
  -o, --out <dir>  where the folders go (default: the current directory)
  --json           print JSON (folders, files and sizes) instead of text
  -h, --help       show this help

Exit code 1 when a video does not exist (or belongs to another tenant), is not completed, or
one of its files could not be saved.
`;

const STATUS = `Usage: clipline status <id> [--json]

Shows a video's status, progress, steps, media metadata, scenes and clips.

Options:
  --json      print the API's JSON
  -h, --help  show this help

Exit code 1 when the video failed or was cancelled, or cannot be read.
`;

const KEYS = `Usage: clipline keys <create|list|revoke> [options]

Manages the API keys the producer keeps, through its admin API (CLIPLINE_URL). CLIPLINE_API_KEY
must be an operator key: one of the producer's ADMIN_API_KEYS, or a key created with --admin.
The API answers any other key 404, as if these routes did not exist.

  keys create --name <name> [--tenant <tenant>] [--admin]
                                creates a key and prints it once: store it now
  keys list                     lists keys (prefix, name, tenant, role, created, last used, status)
  keys revoke <id|prefix|key>   revokes a key; it stops working at once

Options:
  --name <name>      what the key is for (create; required)
  --tenant <tenant>  whose videos the key sees and submits (create; lower-case letters, digits,
                     ".", "_", "-"; default: the name, lower-cased with spaces as "-")
  --admin            an operator key: acts on every tenant's videos (create)
  --json             print JSON instead of text
  -h, --help         show this help
`;

/** Help of one command, or of the whole CLI. */
export function helpText(command?: string): string {
  switch (command) {
    case 'submit':
      return SUBMIT;
    case 'status':
      return STATUS;
    case 'download':
      return DOWNLOAD;
    case 'keys':
      return KEYS;
    default:
      return MAIN;
  }
}
