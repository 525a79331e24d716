#!/usr/bin/env bash
# Resolves the Apache Kafka broker's jars from Maven Central into the cache (run with the machine's Java).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

POM="$(cd "$(dirname "$0")" && pwd)/kafka-pom.xml"
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
LIBS="$TICKETING_CACHE/kafka-$VERSION/libs"
[ -f "$LIBS/.complete" ] && exit 0

need_command java "Kafka needs Java 17 or newer: apt-get install openjdk-17-jre-headless"
need_command mvn "resolving Kafka's jars needs Maven: apt-get install maven"
step "resolving Kafka $VERSION jars from Maven Central"
rm -rf "$LIBS.tmp" && mkdir -p "$LIBS.tmp"
mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >&2 \
    || die "Maven could not resolve org.apache.kafka:kafka_2.13:$VERSION; check the network to Maven Central"
touch "$LIBS.tmp/.complete"
rm -rf "$LIBS" && mv "$LIBS.tmp" "$LIBS"
