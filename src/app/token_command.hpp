// `agentwire token`: mints a subscriber token (a JWT signed with the server's HMAC secret) for development
// and tests, printing it on stdout.
#pragma once

namespace aw::app {

// argv[0] is "token". Returns the exit code: 0 with the token printed, 2 with a message on stderr.
int token_main(int argc, char** argv);

}  // namespace aw::app
