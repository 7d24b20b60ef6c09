#!/usr/bin/env bash
# Compiles the plain-Kotlin core and its tests with kotlinc and runs them with JUnit 4.
# No Android SDK or Gradle needed. Idempotent: installs what is missing (kotlinc from npm
# into core/.tools, junit4 from Debian) and otherwise only recompiles into core/build.
set -euo pipefail

KOTLIN_VERSION=2.4.20
CORE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$CORE/.tools"
KOTLIN_HOME="$TOOLS/node_modules/kotlin-compiler"
KOTLINC="$KOTLIN_HOME/bin/kotlinc"
JUNIT=/usr/share/java/junit4.jar
HAMCREST=/usr/share/java/hamcrest.jar
BUILD="$CORE/build"

command -v java >/dev/null || { echo "test.sh: java (JDK 17+) is required" >&2; exit 1; }

if [[ ! -x "$KOTLINC" || "$(cat "$KOTLIN_HOME/build.txt" 2>/dev/null)" != "$KOTLIN_VERSION" ]]; then
    command -v npm >/dev/null || { echo "test.sh: npm is required to install kotlinc" >&2; exit 1; }
    echo "test.sh: installing kotlin-compiler@$KOTLIN_VERSION into $TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error \
        "kotlin-compiler@$KOTLIN_VERSION" </dev/null
fi

if [[ ! -f "$JUNIT" ]]; then
    echo "test.sh: installing junit4 (apt-get)"
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq </dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq junit4 </dev/null >/dev/null
fi
[[ -f "$HAMCREST" ]] || HAMCREST=$(ls /usr/share/java/hamcrest*.jar | head -n 1)

rm -rf "$BUILD"
mkdir -p "$BUILD/main" "$BUILD/test"
# -Werror: a warning in the core is a bug to fix, not noise to scroll past.
"$KOTLINC" -Werror -jvm-target 17 -d "$BUILD/main" "$CORE/src/main/kotlin" </dev/null
# -Xfriend-paths lets tests see `internal` declarations, as Gradle's test compilation does.
"$KOTLINC" -Werror -jvm-target 17 -cp "$BUILD/main:$JUNIT:$HAMCREST" -Xfriend-paths="$BUILD/main" \
    -d "$BUILD/test" \
    "$CORE/src/test/kotlin" </dev/null

# Test classes: every compiled *Test class (not its inner or lambda classes).
mapfile -t TESTS < <(cd "$BUILD/test" && find . -name '*Test.class' ! -name '*$*' \
    | sed -e 's|^\./||' -e 's|\.class$||' -e 's|/|.|g' | sort)
[[ ${#TESTS[@]} -gt 0 ]] || { echo "test.sh: no test classes found" >&2; exit 1; }

CP="$BUILD/main:$BUILD/test:$CORE/src/test/resources:$KOTLIN_HOME/lib/kotlin-stdlib.jar:$JUNIT:$HAMCREST"
set +e
java -cp "$CP" org.junit.runner.JUnitCore "${TESTS[@]}" </dev/null | tee "$BUILD/junit.log"
STATUS=${PIPESTATUS[0]}
set -e

# JUnit 4 ends with "OK (N tests)" or "Tests run: N,  Failures: M"; restate it plainly.
SUMMARY=$(grep -E '^(OK \(|Tests run: )' "$BUILD/junit.log" | tail -n 1 || true)
RUN=$(sed -E 's/^OK \(([0-9]+) tests?\)$/\1/; s/^Tests run: ([0-9]+),.*/\1/' <<<"$SUMMARY")
FAILED=$(sed -nE 's/.*Failures: ([0-9]+).*/\1/p' <<<"$SUMMARY")
echo "kotlin-core: $(( ${RUN:-0} - ${FAILED:-0} )) passed, ${FAILED:-0} failed"
exit "$STATUS"
