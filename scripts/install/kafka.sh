#!/usr/bin/env bash
# Resolves the Apache Kafka broker's jars from Maven Central into the cache (run with the machine's Java),
# and beside them Kafka's command-line tools (kafka-tools: the metadata quorum, topics, ... commands),
# whose other dependencies the broker's jars already hold.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

POM="$(cd "$(dirname "$0")" && pwd)/kafka-pom.xml"
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
LIBS="$TICKETING_CACHE/kafka-$VERSION/libs"
TOOLS="$TICKETING_CACHE/kafka-$VERSION/tools"
[ -f "$LIBS/.complete" ] && [ -f "$TOOLS/.complete" ] && exit 0

need_command java "Kafka needs Java 17 or newer: apt-get install openjdk-17-jre-headless"
need_command mvn "resolving Kafka's jars needs Maven: apt-get install maven"
if [ ! -f "$LIBS/.complete" ]; then
    step "resolving Kafka $VERSION jars from Maven Central"
    rm -rf "$LIBS.tmp" && mkdir -p "$LIBS.tmp"
    mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >&2 \
        || die "Maven could not resolve org.apache.kafka:kafka_2.13:$VERSION; check the network to Maven Central"
    touch "$LIBS.tmp/.complete"
    rm -rf "$LIBS" && mv "$LIBS.tmp" "$LIBS"
fi
if [ ! -f "$TOOLS/.complete" ]; then
    step "resolving Kafka $VERSION command-line tools from Maven Central"
    rm -rf "$TOOLS.tmp" && mkdir -p "$TOOLS.tmp"
    mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy -Dartifact="org.apache.kafka:kafka-tools:$VERSION" -DoutputDirectory="$TOOLS.tmp" >&2 \
        || die "Maven could not resolve org.apache.kafka:kafka-tools:$VERSION; check the network to Maven Central"
    touch "$TOOLS.tmp/.complete"
    rm -rf "$TOOLS" && mv "$TOOLS.tmp" "$TOOLS"
fi
