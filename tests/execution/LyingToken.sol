// SPDX-License-Identifier: MIT
// Test-only ERC-20 whose balanceOf lies about chosen holders: it reports `bonus` more than they hold
// for every transfer they have received. Transfers themselves are honest.
pragma solidity ^0.8.28;

contract LyingToken {
    mapping(address => uint256) public realBalanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    mapping(address => bool) public lieAbout;
    mapping(address => uint256) public received;
    uint256 public immutable bonus;
    uint8 public constant decimals = 18;

    constructor(uint256 supply, uint256 bonus_) {
        realBalanceOf[msg.sender] = supply;
        bonus = bonus_;
    }

    function setLie(address who, bool on) external {
        lieAbout[who] = on;
    }

    function balanceOf(address who) external view returns (uint256) {
        return realBalanceOf[who] + (lieAbout[who] ? bonus * received[who] : 0);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        realBalanceOf[from] -= amount;
        realBalanceOf[to] += amount;
        received[to] += 1;
    }
}
