#!/usr/bin/perl
# Time Sisimai->make on in-memory messages (the peer of the classify benchmark).
#
# Usage: perl bench/sisimai.pl FILE [ROUNDS] [WARMUP]
#   FILE    messages as "<decimal length>\n<bytes>" records (bench/corpus.py --out)
#   ROUNDS  timed passes over all messages (default 1)
#   WARMUP  messages parsed once before timing, to load Sisimai's modules (default 406)
# Prints one JSON object: {"version", "messages", "results", "seconds": [per round]}.
# Everything is read into memory first; only Sisimai->make(\$string) is timed.
use strict;
use warnings;
use Sisimai;
use Time::HiRes qw(time);

my ($file, $rounds, $warmup) = @ARGV;
die "usage: $0 FILE [ROUNDS] [WARMUP]\n" unless defined $file;
$rounds //= 1;
$warmup //= 406;

open(my $fh, '<:raw', $file) or die "cannot read $file: $!\n";
my @messages;
while (defined(my $len = <$fh>)) {
    chomp $len;
    last if $len eq '';
    my $got = read($fh, my $buf, $len);
    die "short read in $file\n" unless defined $got && $got == $len;
    push @messages, $buf;
}
close $fh;

# Sisimai::Mail::Memory treats a string that starts with "From " as an mbox and splits
# it; every other string is one message. make() returns undef for a message with no
# bounce in it.
my $n = $warmup < @messages ? $warmup : scalar @messages;
Sisimai->make(\$messages[$_]) for 0 .. $n - 1;

my @seconds;
my $results = 0;
for my $r (1 .. $rounds) {
    my $found = 0;
    my $t0 = time;
    for my $i (0 .. $#messages) {
        my $list = Sisimai->make(\$messages[$i]);
        $found += scalar @$list if $list;
    }
    push @seconds, time - $t0;
    $results = $found;
}
printf "{\"version\": \"%s\", \"messages\": %d, \"results\": %d, \"seconds\": [%s]}\n",
    Sisimai->version, scalar @messages, $results, join(', ', map { sprintf '%.4f', $_ } @seconds);
