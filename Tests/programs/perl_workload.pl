#!/usr/bin/perl
# Hash/string-heavy Perl workload with deterministic output (all hash
# iteration goes through sort, so hash-order randomisation does not matter).
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $n = shift // 200000;
my $state = 12345;
sub rnd { $state = ($state * 1103515245 + 12345) % 2147483648; return $state; }

# Hash of strings, deleted from and regrown.
my %h;
for my $i (0 .. $n - 1) {
    my $k = sprintf("k%07d-%x", $i, rnd() & 0xfff);
    $h{$k} = ("v" x ($i % 37)) . $i;
}
my @keys = sort keys %h;
for my $i (0 .. $#keys) { delete $h{$keys[$i]} if $i % 3 == 0; }
$h{"extra$_"} = [$_, "e" x ($_ % 20)] for 0 .. $n / 4;
my @k2 = sort keys %h;
my $klen = 0; $klen += length for @k2;
print "hash: size=", scalar(@k2), " keylen=$klen first=$k2[0] last=$k2[-1] md5=",
      md5_hex(join(",", @k2[grep { $_ % 1000 == 0 } 0 .. $#k2])), "\n";

# String building, split, join, regex substitutions.
my $s = "";
$s .= "word$_ " . ("abc" x ($_ % 5)) . "\n" for 0 .. $n / 2;
my @lines = split /\n/, $s;
(my $t = $s) =~ s/(\d+)/<$1>/g;
my @words = sort { length($a) <=> length($b) || $a cmp $b } map { scalar reverse $_ } @lines;
my %count;
$count{$_}++ for map { /(\d)/ ? $1 : "none" } @lines;
print "strings: len=", length($s), " lines=", scalar(@lines), " subst=", length($t),
      " md5=", md5_hex($t), " words=", md5_hex(join("|", @words[0 .. 999])),
      " counts=", join(",", map { "$_=$count{$_}" } sort keys %count), "\n";

# Nested structures and numeric sort.
my @recs = map { { id => $_, name => "n" . rnd(), list => [ map { $_ * 2 } 0 .. ($_ % 10) ] } } 0 .. $n / 4;
my @sorted = sort { $a->{name} cmp $b->{name} } @recs;
my $sum = 0; $sum += scalar(@{ $_->{list} }) for @sorted;
my @nums = sort { $a <=> $b } map { rnd() % 1000003 } 1 .. $n / 2;
print "records: n=", scalar(@sorted), " listsum=$sum first=$sorted[0]{name} numsmd5=",
      md5_hex(join(",", @nums[grep { $_ % 500 == 0 } 0 .. $#nums])), "\n";
print "done\n";
